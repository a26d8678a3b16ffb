package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// Files are the web app's files: index.html at the root, the scripts and
// styles beside it.
func Files() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic("web: " + err.Error()) // static is embedded: it exists
	}
	return sub
}
