package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/fieldstream/fieldstream/pkg/webhook"
)

// sender is one keep-alive HTTP/1.1 connection that posts signed Standard Webhooks
// events. It writes each request with one syscall and parses only the status line and
// Content-Length of the answer: a load generator as lean as wrk, so that on a 2-core machine
// the CPU goes to the gateway and JetStream rather than to net/http's client.
type sender struct {
	addr, path string
	secret     webhook.Secret
	payload    int
	seq        *atomic.Int64

	conn net.Conn
	br   *bufio.Reader
	req  []byte
	body []byte
}

func (s *sender) dial() error {
	if s.conn != nil {
		s.conn.Close()
	}
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		return err
	}
	s.conn, s.br = c, bufio.NewReaderSize(c, 4096)
	return nil
}

// post sends one event and returns the answer's status.
func (s *sender) post() (int, error) {
	if s.conn == nil {
		if err := s.dial(); err != nil {
			return 0, err
		}
	}
	n := s.seq.Add(1)
	id := "msg_" + strconv.FormatInt(n, 10)
	now := time.Now()
	s.body = append(s.body[:0], `{"type":"asset.updated","timestamp":"`...)
	s.body = now.UTC().AppendFormat(s.body, time.RFC3339)
	s.body = append(s.body, `","data":{"id":`...)
	s.body = strconv.AppendInt(s.body, 2274033731790000+rand.Int64N(100000), 10)
	s.body = append(s.body, `,"locationId":2274033731790417,"status":"active","notes":"`...)
	for len(s.body) < s.payload-3 {
		s.body = append(s.body, 'a')
	}
	s.body = append(s.body, `"}}`...)
	ts := now.Unix()
	s.req = append(s.req[:0], "POST "...)
	s.req = append(s.req, s.path...)
	s.req = append(s.req, " HTTP/1.1\r\nHost: "...)
	s.req = append(s.req, s.addr...)
	s.req = append(s.req, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	s.req = strconv.AppendInt(s.req, int64(len(s.body)), 10)
	s.req = append(s.req, "\r\nwebhook-id: "...)
	s.req = append(s.req, id...)
	s.req = append(s.req, "\r\nwebhook-timestamp: "...)
	s.req = strconv.AppendInt(s.req, ts, 10)
	s.req = append(s.req, "\r\nwebhook-signature: "...)
	s.req = append(s.req, s.secret.Sign(id, ts, s.body)...)
	s.req = append(s.req, "\r\n\r\n"...)
	s.req = append(s.req, s.body...)
	if _, err := s.conn.Write(s.req); err != nil {
		s.conn = nil
		return 0, err
	}
	status, err := s.readAnswer()
	if err != nil {
		s.conn = nil
	}
	return status, err
}

func (s *sender) readAnswer() (int, error) {
	line, err := s.br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, err
	}
	length, closing := -1, false
	for {
		h, err := s.br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(h) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(h, []byte(":")); ok {
			v = bytes.TrimSpace(v)
			switch {
			case bytes.EqualFold(k, []byte("Content-Length")):
				length, _ = strconv.Atoi(string(v))
			case bytes.EqualFold(k, []byte("Connection")) && bytes.EqualFold(v, []byte("close")):
				closing = true
			}
		}
	}
	if length < 0 {
		return 0, fmt.Errorf("answer %d without Content-Length", status)
	}
	if _, err := s.br.Discard(length); err != nil {
		return 0, err
	}
	if closing {
		s.conn.Close()
		s.conn = nil
	}
	return status, nil
}
