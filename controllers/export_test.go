package controllers

// Exported for the integration suite (package controllers_test), which only
// the API server can answer for.
var (
	// BoundStatus is boundStatus.
	BoundStatus = boundStatus
	// OverBounds is overBounds.
	OverBounds = overBounds
)
