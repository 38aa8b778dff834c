// An ext_proc processor that does nothing but answer: every ProcessingRequest comes back
// as the ProcessingResponse carrying the same Data (read_data and write_data have the same
// field numbers in both messages, so the request bytes are a valid answer). It bounds from
// above what any processor behind Envoy's network ext_proc filter can reach, whatever the
// language: bench/kafka compares it with l7mesh's processor. Exploration only.
//
//	go run . /path/to/processor.sock
package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
)

func process(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/grpc")
	w.Header().Set("Trailer", "Grpc-Status")
	w.WriteHeader(http.StatusOK)
	flusher := w.(http.Flusher)
	flusher.Flush()
	in := bufio.NewReaderSize(r.Body, 256*1024)
	head := make([]byte, 5)
	var msg []byte
	for {
		if _, err := io.ReadFull(in, head); err != nil {
			break
		}
		n := int(binary.BigEndian.Uint32(head[1:]))
		if cap(msg) < n {
			msg = make([]byte, n)
		}
		msg = msg[:n]
		if _, err := io.ReadFull(in, msg); err != nil {
			break
		}
		if _, err := w.Write(head); err != nil {
			break
		}
		if _, err := w.Write(msg); err != nil {
			break
		}
		flusher.Flush()
	}
	w.Header().Set("Grpc-Status", "0")
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: echo-go <unix socket path>")
		os.Exit(2)
	}
	path := os.Args[1]
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The same 16 MiB receive windows as l7mesh's processor.
	srv := &http.Server{
		Handler:   http.HandlerFunc(process),
		Protocols: new(http.Protocols),
		HTTP2:     &http.HTTP2Config{MaxReceiveBufferPerStream: 16 << 20, MaxReceiveBufferPerConnection: 16 << 20},
	}
	srv.Protocols.SetUnencryptedHTTP2(true)
	fmt.Printf("{\"unix\":%q}\n", path)
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
