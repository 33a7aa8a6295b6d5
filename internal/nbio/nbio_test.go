package nbio

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

func TestReadWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(peer)
			return
		}
		peer <- c
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	other := <-peer
	if other == nil {
		t.Fatal("accept failed")
	}
	c, err := New(conn)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)

	if n, err := c.Read(buf, false); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("read of an empty socket = %d, %v; want ErrWouldBlock", n, err)
	}
	if n, err := c.Write([]byte("ping")); n != 4 || err != nil {
		t.Fatalf("write = %d, %v", n, err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(other, got); err != nil || string(got) != "ping" {
		t.Fatalf("peer read %q, %v", got, err)
	}

	// A waiting read returns once the peer writes.
	go func() {
		time.Sleep(50 * time.Millisecond)
		other.Write([]byte("pong"))
	}()
	if n, err := c.Read(buf, true); err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("waiting read = %q, %v", buf[:n], err)
	}

	// A waiting read honours the read deadline.
	conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := c.Read(buf, true); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("waiting read past the deadline: %v", err)
	}
	conn.SetReadDeadline(time.Time{})

	other.Close()
	time.Sleep(20 * time.Millisecond)
	if n, err := c.Read(buf, false); !errors.Is(err, io.EOF) {
		t.Fatalf("read after the peer closed = %d, %v; want EOF", n, err)
	}
}

func TestPending(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		peer <- c
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	other := <-peer
	c, err := New(conn)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := c.Pending(); p || err != nil {
		t.Fatalf("nothing sent: Pending = %v, %v", p, err)
	}
	if _, err := other.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for p, _ := c.Pending(); !p; p, _ = c.Pending() {
		if time.Now().After(deadline) {
			t.Fatal("a byte sent, never pending")
		}
		time.Sleep(time.Millisecond)
	}
	buf := make([]byte, 4)
	if n, err := c.Read(buf, false); n != 1 || err != nil {
		t.Fatalf("Pending consumed the byte: read %d, %v", n, err)
	}
	other.Close()
	for p, _ := c.Pending(); !p; p, _ = c.Pending() {
		if time.Now().After(deadline) {
			t.Fatal("peer closed, not pending")
		}
		time.Sleep(time.Millisecond)
	}
}
