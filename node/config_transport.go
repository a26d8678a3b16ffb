package node

import (
	"fmt"
	"time"

	"github.com/throughline/throughline/gateway"
	"github.com/throughline/throughline/journey"
)

// TransportConfig is the part of `node:` about the HTTP listener: TLS,
// timeouts and sizes (inline: its keys sit directly under node). A key
// omitted takes its default.
type TransportConfig struct {
	// TLS serves HTTPS and WSS with a PEM certificate and key; reloaded on
	// SIGHUP. nil: plain HTTP.
	TLS *TLSFiles `yaml:"tls"`
	// ReadHeaderTimeout bounds reading a request's headers. Default 10s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a request's body (WebSockets excepted).
	// Default 30s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing an answer (an export: each page;
	// WebSockets excepted). Default 30s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// HTTPIdleTimeout closes a keep-alive connection idle this long.
	// Default 120s.
	HTTPIdleTimeout time.Duration `yaml:"http_idle_timeout"`
	// HeaderMaxBytes bounds a request's headers (431 past it). Default 64
	// KiB.
	HeaderMaxBytes int `yaml:"header_max_bytes"`
	// BodyMaxBytes bounds a request's body (413). Default 16 MiB.
	BodyMaxBytes int64 `yaml:"body_max_bytes"`
	// FrameMaxBytes bounds a WebSocket frame (closed with 1009). Default 16
	// MiB.
	FrameMaxBytes int64 `yaml:"frame_max_bytes"`
	// WSPingInterval: the server pings every WebSocket this often. Default
	// 30s.
	WSPingInterval time.Duration `yaml:"ws_ping_interval"`
	// WSIdleTimeout closes a WebSocket that sent nothing, not even a pong,
	// for this long. Default 90s.
	WSIdleTimeout time.Duration `yaml:"ws_idle_timeout"`
}

// TLSFiles names a PEM certificate (with its chain) and its key; CA, where
// it is read (cluster.tls), the PEM certificates of the authority a peer's
// certificate must be signed by.
type TLSFiles struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	CA   string `yaml:"ca"`
}

func (t *TransportConfig) ensureDefaults() {
	if t.ReadHeaderTimeout == 0 {
		t.ReadHeaderTimeout = 10 * time.Second
	}
	if t.ReadTimeout == 0 {
		t.ReadTimeout = 30 * time.Second
	}
	if t.WriteTimeout == 0 {
		t.WriteTimeout = 30 * time.Second
	}
	if t.HTTPIdleTimeout == 0 {
		t.HTTPIdleTimeout = 120 * time.Second
	}
	if t.HeaderMaxBytes == 0 {
		t.HeaderMaxBytes = journey.HeaderMaxBytesDefault
	}
	if t.BodyMaxBytes == 0 {
		t.BodyMaxBytes = journey.BodyMaxBytesDefault
	}
	if t.FrameMaxBytes == 0 {
		t.FrameMaxBytes = journey.FrameMaxBytesDefault
	}
	if t.WSPingInterval == 0 {
		t.WSPingInterval = 30 * time.Second
	}
	if t.WSIdleTimeout == 0 {
		t.WSIdleTimeout = 3 * t.WSPingInterval
	}
}

// Bounds of the transport settings.
const (
	transportTimeoutMin = 10 * time.Millisecond
	transportTimeoutMax = time.Hour
	headerMaxBytesMin   = 1 << 10
	headerMaxBytesMax   = 1 << 20
	requestMaxBytesMax  = 256 << 20
)

// validateTransport lists the node transport settings' problems.
func (c *Config) validateTransport() []error {
	t := &c.Node.TransportConfig
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"node.read_header_timeout", t.ReadHeaderTimeout}, {"node.read_timeout", t.ReadTimeout},
		{"node.write_timeout", t.WriteTimeout}, {"node.http_idle_timeout", t.HTTPIdleTimeout},
		{"node.ws_ping_interval", t.WSPingInterval}, {"node.ws_idle_timeout", t.WSIdleTimeout},
	} {
		if d.v < transportTimeoutMin || d.v > transportTimeoutMax {
			add("%s: %s is not within %s..%s", d.key, d.v, transportTimeoutMin, transportTimeoutMax)
		}
	}
	if t.WSIdleTimeout <= t.WSPingInterval {
		add("node.ws_idle_timeout: %s must be longer than node.ws_ping_interval (%s): a live client answers a ping within it", t.WSIdleTimeout, t.WSPingInterval)
	}
	if t.HeaderMaxBytes < headerMaxBytesMin || t.HeaderMaxBytes > headerMaxBytesMax {
		add("node.header_max_bytes: %d is not in %d..%d", t.HeaderMaxBytes, headerMaxBytesMin, headerMaxBytesMax)
	}
	if t.BodyMaxBytes < journey.EventMaxBytes || t.BodyMaxBytes > requestMaxBytesMax {
		add("node.body_max_bytes: %d is not in %d..%d (an event must fit)", t.BodyMaxBytes, journey.EventMaxBytes, requestMaxBytesMax)
	}
	if t.FrameMaxBytes < journey.EventMaxBytes || t.FrameMaxBytes > requestMaxBytesMax {
		add("node.frame_max_bytes: %d is not in %d..%d (an event must fit)", t.FrameMaxBytes, journey.EventMaxBytes, requestMaxBytesMax)
	}
	if t.TLS != nil {
		if t.TLS.CA != "" {
			add("node.tls.ca: not read (clients are authenticated by their tokens); remove it")
		}
		if _, err := loadKeyPair("node.tls", t.TLS); err != nil {
			add("%v", err)
		}
	}
	return errs
}

// gatewayTransport fills the gateway's transport settings.
func (t *TransportConfig) gatewayTransport(g *gateway.Config) {
	g.ReadHeaderTimeout, g.HTTPReadTimeout, g.HTTPWriteTimeout = t.ReadHeaderTimeout, t.ReadTimeout, t.WriteTimeout
	g.HTTPIdleTimeout, g.HeaderMaxBytes = t.HTTPIdleTimeout, t.HeaderMaxBytes
	g.BodyMaxBytes, g.FrameMaxBytes = t.BodyMaxBytes, t.FrameMaxBytes
	g.WSPingInterval, g.WSIdleTimeout = t.WSPingInterval, t.WSIdleTimeout
}
