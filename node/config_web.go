package node

import (
	"io/fs"

	"github.com/throughline/throughline/web"
)

// WebConfig is the `web:` section (PROTOCOL section 10).
type WebConfig struct {
	// Enabled serves the web app (agent desk, supervisor's dashboard) at /.
	// Default true; false turns it off (the API stays).
	Enabled *bool `yaml:"enabled"`
}

// files is the web app to serve, nil when it is turned off.
func (w WebConfig) files() fs.FS {
	if w.Enabled != nil && !*w.Enabled {
		return nil
	}
	return web.Files()
}
