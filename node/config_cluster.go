package node

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ClusterConfig is the `cluster:` section (PROTOCOL section 8). Without it
// (no gossip address) the node is a cluster of one.
type ClusterConfig struct {
	// Name names the cluster (an extension of PROTOCOL 8); a data dir
	// remembers it and a node refuses members of another. Default
	// "throughline".
	Name string `yaml:"name"`
	// Gossip is the membership address (memberlist).
	Gossip string `yaml:"gossip"`
	// Remote is the node-to-node actor messages' address (protoactor remote).
	Remote string `yaml:"remote"`
	// Raft is the replication address: every partition over one port.
	Raft string `yaml:"raft"`
	// Join lists members' gossip addresses; empty on the first node.
	Join []string `yaml:"join"`
	// Replicas is how many copies each partition has, 1..5. Default 3 (at
	// most BootstrapExpect).
	Replicas int `yaml:"replicas"`
	// BootstrapExpect is how many nodes to wait for before the first
	// placement. Default Replicas.
	BootstrapExpect int `yaml:"bootstrap_expect"`
	// DeadAfter is how long a member must be dead before its replicas are
	// replaced (the placement grace). Default 30s.
	DeadAfter time.Duration `yaml:"dead_after"`
	// TLS is mutual TLS between nodes on the raft and remote ports: cert
	// and key are this node's, ca the authority every node's certificate
	// must be signed by; a node without such a certificate is refused.
	// Reloaded on SIGHUP (cert and key). nil: plain TCP.
	TLS *TLSFiles `yaml:"tls"`
	// GossipKeyFile names a file holding the base64 of a 16, 24 or 32 byte
	// key that encrypts and authenticates gossip (memberlist); every node
	// has the same. Required with tls: gossip carries the placement.
	GossipKeyFile string `yaml:"gossip_key_file"`
}

// Enabled says whether the node runs in a cluster.
func (c *ClusterConfig) Enabled() bool { return c.Gossip != "" }

const (
	replicasMax      = 5
	clusterNodesMax  = 64
	clusterNameMax   = 64
	deadAfterDefault = 30 * time.Second
)

var clusterNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func (c *ClusterConfig) ensureDefaults() {
	if !c.Enabled() {
		return
	}
	if c.Name == "" {
		c.Name = "throughline"
	}
	if c.Replicas == 0 {
		c.Replicas = 3
		if c.BootstrapExpect > 0 && c.BootstrapExpect < 3 {
			c.Replicas = c.BootstrapExpect
		}
	}
	if c.BootstrapExpect == 0 {
		c.BootstrapExpect = c.Replicas
	}
	if c.DeadAfter == 0 {
		c.DeadAfter = deadAfterDefault
	}
}

// validateCluster lists the cluster section's problems.
func (c *Config) validateCluster() []error {
	cl := &c.Cluster
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !cl.Enabled() {
		if cl.Remote != "" || cl.Raft != "" || len(cl.Join) > 0 || cl.Replicas != 0 || cl.BootstrapExpect != 0 {
			add("cluster.gossip: required when any other cluster setting is given")
		}
		return errs
	}
	addrs := map[string]string{"node.http": c.Node.HTTP}
	for _, a := range []struct{ key, addr string }{{"cluster.gossip", cl.Gossip}, {"cluster.remote", cl.Remote}, {"cluster.raft", cl.Raft}} {
		if err := checkHostPort(a.addr); err != nil {
			add("%s: %v", a.key, err)
			continue
		}
		for k, v := range addrs {
			if v == a.addr {
				add("%s: %s is also %s", a.key, a.addr, k)
			}
		}
		addrs[a.key] = a.addr
	}
	for i, j := range cl.Join {
		if err := checkHostPort(j); err != nil {
			add("cluster.join[%d]: %v", i, err)
		}
	}
	if len(cl.Join) > clusterNodesMax {
		add("cluster.join: %d addresses, at most %d", len(cl.Join), clusterNodesMax)
	}
	if cl.Replicas < 1 || cl.Replicas > replicasMax {
		add("cluster.replicas: %d is not in 1..%d", cl.Replicas, replicasMax)
	}
	if cl.BootstrapExpect < 1 || cl.BootstrapExpect > clusterNodesMax {
		add("cluster.bootstrap_expect: %d is not in 1..%d", cl.BootstrapExpect, clusterNodesMax)
	} else if cl.Replicas > cl.BootstrapExpect {
		add("cluster.replicas: %d copies need at least as many nodes, but bootstrap_expect is %d", cl.Replicas, cl.BootstrapExpect)
	}
	if len(cl.Name) > clusterNameMax || !clusterNameRE.MatchString(cl.Name) {
		add("cluster.name: %q is not 1..%d letters, digits, '.', '_' or '-'", cl.Name, clusterNameMax)
	}
	if len(c.Node.Name) > clusterNameMax || !clusterNameRE.MatchString(c.Node.Name) {
		add("node.name: %q is not 1..%d letters, digits, '.', '_' or '-' (a cluster names its members by it)", c.Node.Name, clusterNameMax)
	}
	if cl.DeadAfter < time.Second || cl.DeadAfter > 24*time.Hour {
		add("cluster.dead_after: %s is not within 1s..24h", cl.DeadAfter)
	}
	return append(errs, cl.validateTLS()...)
}

// checkHostPort accepts host:port with a numeric port in 1..65535.
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port is not in 1..65535", addr)
	}
	if host == "" {
		return fmt.Errorf("%q: a host is required (other nodes dial it)", addr)
	}
	return nil
}

// validateTLS lists the problems of cluster.tls and cluster.gossip_key_file.
func (cl *ClusterConfig) validateTLS() []error {
	var errs []error
	if cl.TLS != nil {
		if _, err := loadKeyPair("cluster.tls", cl.TLS); err != nil {
			errs = append(errs, err)
		}
		if _, err := loadCA("cluster.tls", cl.TLS.CA); err != nil {
			errs = append(errs, err)
		}
		if cl.GossipKeyFile == "" {
			errs = append(errs, errors.New("cluster.gossip_key_file: required with cluster.tls (gossip carries the placement; unencrypted, anyone reaching the gossip port could change it)"))
		}
	}
	if cl.GossipKeyFile != "" {
		if _, err := loadGossipKey(cl.GossipKeyFile); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// loadGossipKey reads the base64 of a 16, 24 or 32 byte key.
func loadGossipKey(path string) ([]byte, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cluster.gossip_key_file: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(text)))
	if err != nil {
		return nil, fmt.Errorf("cluster.gossip_key_file: %s is not base64: %w", path, err)
	}
	if n := len(key); n != 16 && n != 24 && n != 32 {
		return nil, fmt.Errorf("cluster.gossip_key_file: the key is %d bytes; want 16, 24 or 32 (openssl rand -base64 32)", n)
	}
	return key, nil
}
