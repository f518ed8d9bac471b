// Package recipes ships the recipe JSON Schema and the recipes criu-forge
// maintains, embedded so the binary can validate and list them anywhere.
package recipes

import "embed"

// Schema is the JSON Schema (draft 2020-12) of a recipe file.
//
//go:embed schema.json
var Schema []byte

// Files holds the shipped recipes (*.yaml).
//
//go:embed *.yaml
var Files embed.FS
