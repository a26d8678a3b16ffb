//go:build unix

package gateway

import (
	"net"
	"syscall"
)

// rawConnOf is conn's descriptor for reads that wait in the poller (nil:
// none, as over TLS).
func rawConnOf(conn net.Conn) syscall.RawConn {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// rawRead is read(2) on a non-blocking socket, retried when interrupted.
func rawRead(fd uintptr, p []byte) (int, error) {
	for {
		n, err := syscall.Read(int(fd), p)
		if err != syscall.EINTR {
			return n, err
		}
	}
}
