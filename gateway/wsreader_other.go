//go:build !unix

package gateway

import (
	"net"
	"syscall"
)

// rawConnOf: reads are plain reads where the socket's read is not read(2).
func rawConnOf(net.Conn) syscall.RawConn { return nil }

// rawRead is never called: rawConnOf gives no descriptor.
func rawRead(uintptr, []byte) (int, error) { return 0, syscall.EINVAL }
