// Package crd embeds the generated CustomResourceDefinitions (bases/, from
// `make manifests`), so a binary can validate manifests offline against
// exactly the schema and CEL rules the API server enforces.
package crd

import "embed"

// Bases holds bases/*.yaml, one CustomResourceDefinition per file.
//
//go:embed bases/*.yaml
var Bases embed.FS
