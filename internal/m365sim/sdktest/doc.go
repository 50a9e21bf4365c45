// Package sdktest proves the simulator's Graph answers against
// msgraph-sdk-go. It holds only tests, in their own package so that the
// simulator's unit tests do not compile the (very large) Graph SDK. It must
// not hold code the simulator or the controller imports.
package sdktest
