package testutil

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// RESPServer is a fake Redis or Sentinel on loopback: it reads RESP
// commands and writes whatever its reply function returns. It stands in
// for states a real server is hard to hold in (loading a large dataset, a
// sentinel that stops answering).
type RESPServer struct {
	l net.Listener
}

// ServeRESP serves until the test ends. reply gets each command's
// arguments and returns the raw RESP to send back; "" sends nothing (a
// frozen server). Reply may be called from several goroutines at once.
func ServeRESP(t testing.TB, reply func(args []string) string) *RESPServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					args, err := ReadCommand(r)
					if err != nil {
						return
					}
					if out := reply(args); out != "" {
						if _, err := io.WriteString(c, out); err != nil {
							return
						}
					}
				}
			})
		}
	})
	return &RESPServer{l: l}
}

// Port is the server's port on 127.0.0.1.
func (s *RESPServer) Port() int { return s.l.Addr().(*net.TCPAddr).Port }

// ReadCommand reads one command: an array of bulk strings.
func ReadCommand(r *bufio.Reader) ([]string, error) {
	head, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "*")))
	if err != nil || n < 0 {
		return nil, fmt.Errorf("bad header %q", head)
	}
	args := make([]string, n)
	for i := range args {
		if _, err := r.ReadString('\n'); err != nil { // $len
			return nil, err
		}
		s, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		args[i] = strings.TrimSuffix(s, "\r\n")
	}
	return args, nil
}

// Bulk encodes s as a RESP bulk string.
func Bulk(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }

// ClosedPort is a loopback port nothing listens on.
func ClosedPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreeAddr is a loopback "127.0.0.1:port" free at the time of the call.
func FreeAddr(t testing.TB) string {
	return "127.0.0.1:" + strconv.Itoa(ClosedPort(t))
}
