package cluster

// Membership over hashicorp/memberlist (v0.6.0: the newest that builds
// beside hashicorp/raft v1.7.2; v0.7.0 lifts go-metrics past the package
// raft imports). Memberlist says who is alive; it decides nothing about
// data. A node joins under a name per incarnation ("n1#<start ms>": a
// restarted node must not be refused as a dead name) and carries its
// metadata (NodeMeta); a node of another cluster id or partition count is
// refused when it tries to merge.

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// NodeMeta is what a node tells the others of itself.
type NodeMeta struct {
	Name   string `json:"n"` // the base name (n1), stable across restarts
	HTTP   string `json:"h"`
	Remote string `json:"r"`
	Raft   string `json:"f"`
	Gossip string `json:"g"`
	// Leaving says the node asked to leave (POST /v1/cluster/leave): its
	// replicas move away, then it departs.
	Leaving    bool   `json:"l,omitempty"`
	ClusterID  string `json:"c"`
	Partitions int    `json:"p"`
}

// metaMax is memberlist's limit on a node's metadata.
const metaMax = memberlist.MetaMaxSize

func (m NodeMeta) encode() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > metaMax {
		return nil, fmt.Errorf("cluster: node metadata of %d bytes, more than memberlist's %d", len(b), metaMax)
	}
	return b, nil
}

func decodeMeta(b []byte) (NodeMeta, error) {
	var m NodeMeta
	err := json.Unmarshal(b, &m)
	return m, err
}

// MembershipConfig configures a node's membership.
type MembershipConfig struct {
	Meta NodeMeta // its Name is the base name
	// Gossip is the address to bind (host:port).
	Gossip string
	// ProbeInterval: 200 ms detects a dead node in about 0.7 s (DESIGN;
	// lower flaps on 2 cores). Default 200ms.
	ProbeInterval time.Duration
	// OnChange is told of every member's change; it must not block.
	OnChange func(Member, NodeMeta)
	Logger   *slog.Logger
	// Now is when this incarnation started; default time.Now().
	Now time.Time
	// LocalState, when set, is this node's shared state (the placement it
	// knows), exchanged in memberlist's push/pull; MergeState receives a
	// peer's. Both must be quick and must not block.
	LocalState func() []byte
	MergeState func([]byte)
	// SecretKey, when set (16, 24 or 32 bytes), encrypts and authenticates
	// every gossip message with AES-GCM (memberlist's keyring); a member
	// without it can neither read nor join. nil: plain gossip.
	SecretKey []byte
}

// Membership is a node's view of the cluster.
type Membership struct {
	ml     *memberlist.Memberlist
	cfg    MembershipConfig
	once   sync.Once
	metaMu sync.Mutex // guards cfg.Meta after start (SetLeaving)

	mu struct {
		sync.Mutex
		members map[string]MemberInfo // by incarnation name, from events
	}
}

// IncarnationName is the memberlist name of a node's incarnation.
func IncarnationName(base string, start time.Time) string {
	return base + "#" + strconv.FormatInt(start.UnixMilli(), 10)
}

// BaseName is the node name of an incarnation name.
func BaseName(incarnation string) string {
	base, _, _ := strings.Cut(incarnation, "#")
	return base
}

// StartMembership starts gossiping on cfg.Gossip; Join joins others.
func StartMembership(cfg MembershipConfig) (*Membership, error) {
	if cfg.Meta.Name == "" || strings.Contains(cfg.Meta.Name, "#") {
		return nil, fmt.Errorf("cluster: node name %q: required, without '#'", cfg.Meta.Name)
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = 200 * time.Millisecond
	}
	if cfg.Now.IsZero() {
		cfg.Now = time.Now()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if _, err := cfg.Meta.encode(); err != nil {
		return nil, err
	}
	host, portText, err := net.SplitHostPort(cfg.Gossip)
	if err != nil {
		return nil, fmt.Errorf("cluster.gossip: %w", err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("cluster.gossip: port %q: %w", portText, err)
	}
	m := &Membership{cfg: cfg}
	m.mu.members = map[string]MemberInfo{}
	mc := memberlist.DefaultLANConfig()
	mc.Name = IncarnationName(cfg.Meta.Name, cfg.Now)
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertiseAddr, mc.AdvertisePort = host, port
	mc.ProbeInterval = cfg.ProbeInterval
	mc.ProbeTimeout = cfg.ProbeInterval
	mc.GossipInterval = cfg.ProbeInterval / 2
	mc.SuspicionMult = 2
	mc.Delegate = (*delegate)(m)
	mc.Events = (*events)(m)
	mc.Merge = (*merger)(m)
	mc.Alive = (*merger)(m)
	mc.Logger = slog.NewLogLogger(cfg.Logger.With("lib", "memberlist").Handler(), slog.LevelDebug)
	mc.SecretKey = cfg.SecretKey
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("cluster: membership: %w", err)
	}
	m.ml = ml
	return m, nil
}

// Join contacts the given gossip addresses; it fails when none answered or
// every one belongs to another cluster.
func (m *Membership) Join(addrs []string) error {
	if len(addrs) == 0 {
		return nil
	}
	n, err := m.ml.Join(addrs)
	if n == 0 {
		return fmt.Errorf("cluster: join %v: %w", addrs, err)
	}
	return nil
}

// Members is every member known, with its metadata and since when it is
// in its state, by base name (the latest incarnation of each). Memberlist
// lists live members only; the dead and the departed are kept from its
// events.
func (m *Membership) Members() map[string]MemberInfo {
	out := map[string]MemberInfo{}
	put := func(info MemberInfo) {
		if prev, ok := out[info.Name]; !ok || prev.Incarnation < info.Incarnation {
			out[info.Name] = info
		}
	}
	m.mu.Lock()
	for _, info := range m.mu.members {
		put(info)
	}
	m.mu.Unlock()
	for _, n := range m.ml.Members() {
		meta, err := decodeMeta(n.Meta)
		if err != nil {
			continue
		}
		if _, tracked := out[meta.Name]; !tracked {
			put(MemberInfo{Member: Member{Name: meta.Name, State: stateOf(n.State), Since: m.cfg.Now}, Meta: meta, Incarnation: n.Name})
		}
	}
	return out
}

// membersMax bounds the incarnations remembered; past it the departed ones
// are forgotten first.
const membersMax = 1024

// MemberInfo is a member with its metadata.
type MemberInfo struct {
	Member
	Meta        NodeMeta
	Incarnation string
}

func stateOf(s memberlist.NodeStateType) MemberState {
	switch s {
	case memberlist.StateAlive:
		return Alive
	case memberlist.StateSuspect:
		return Suspect
	case memberlist.StateLeft:
		return Left
	}
	return Dead
}

// SetLeaving tells the others this node is leaving (its metadata says so).
func (m *Membership) SetLeaving() error {
	m.metaMu.Lock()
	m.cfg.Meta.Leaving = true
	m.metaMu.Unlock()
	return m.ml.UpdateNode(5 * time.Second)
}

// Leave tells the others this node leaves, within timeout.
func (m *Membership) Leave(timeout time.Duration) error { return m.ml.Leave(timeout) }

// Shutdown stops gossiping (without leaving: the others see it dead). Safe
// to call twice.
func (m *Membership) Shutdown() error {
	var err error
	m.once.Do(func() { err = m.ml.Shutdown() })
	return err
}

// delegate serves the node's metadata.
type delegate Membership

func (d *delegate) NodeMeta(limit int) []byte {
	d.metaMu.Lock()
	b, _ := d.cfg.Meta.encode()
	d.metaMu.Unlock()
	if len(b) > limit {
		return nil
	}
	return b
}
func (d *delegate) NotifyMsg([]byte)                           {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte {
	if d.cfg.LocalState == nil {
		return nil
	}
	return d.cfg.LocalState()
}

func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	if d.cfg.MergeState != nil && len(buf) > 0 {
		d.cfg.MergeState(buf)
	}
}

// events reports members' changes.
type events Membership

func (e *events) notify(n *memberlist.Node, left bool) {
	meta, err := decodeMeta(n.Meta)
	if err != nil {
		return
	}
	state := stateOf(n.State)
	if left && state != Left {
		state = Dead // NotifyLeave: dead or departed
	}
	member := Member{Name: meta.Name, State: state, Since: time.Now()}
	e.mu.Lock()
	if _, ok := e.mu.members[n.Name]; !ok && len(e.mu.members) >= membersMax {
		for k, v := range e.mu.members {
			if v.State == Dead || v.State == Left {
				delete(e.mu.members, k)
				break
			}
		}
	}
	e.mu.members[n.Name] = MemberInfo{Member: member, Meta: meta, Incarnation: n.Name}
	e.mu.Unlock()
	if e.cfg.OnChange != nil {
		e.cfg.OnChange(member, meta)
	}
}
func (e *events) NotifyJoin(n *memberlist.Node)   { e.notify(n, false) }
func (e *events) NotifyLeave(n *memberlist.Node)  { e.notify(n, true) }
func (e *events) NotifyUpdate(n *memberlist.Node) { e.notify(n, false) }

// merger refuses members of another cluster.
type merger Membership

var errOtherCluster = errors.New("cluster: another cluster")

func (g *merger) check(n *memberlist.Node) error {
	meta, err := decodeMeta(n.Meta)
	if err != nil {
		return fmt.Errorf("cluster: node %s: unreadable metadata: %w", n.Name, err)
	}
	own := g.cfg.Meta
	switch {
	case meta.ClusterID != own.ClusterID:
		return fmt.Errorf("%w: node %s belongs to cluster %q, this node to %q", errOtherCluster, meta.Name, meta.ClusterID, own.ClusterID)
	case meta.Partitions != own.Partitions:
		return fmt.Errorf("%w: node %s has %d partitions, this node %d", errOtherCluster, meta.Name, meta.Partitions, own.Partitions)
	}
	return nil
}

func (g *merger) NotifyMerge(peers []*memberlist.Node) error {
	for _, p := range peers {
		if err := g.check(p); err != nil {
			g.cfg.Logger.Error("refused to merge with another cluster", "err", err)
			return err
		}
	}
	return nil
}

func (g *merger) NotifyAlive(peer *memberlist.Node) error { return g.check(peer) }
