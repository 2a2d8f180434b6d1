// Command interop checks trustca's artefacts with Go's standard library
// only (crypto/x509, crypto/tls, net/http): an independent implementation,
// and the one that grpcurl, Kubernetes, Vault, Caddy, Traefik and most IoT
// gateways use.
//
// Every check prints one line, "ok <what>" or "FAIL <what>: <reason>", and
// the program exits 1 if any check failed.
//
//	interop cert FILE...                    parse every certificate in each PEM file
//	interop crl CRL=ISSUER...               parse a CRL (DER or PEM) and check its signature
//	interop verify ROOT CHAIN EKU           verify CHAIN's leaf (intermediates follow it) to ROOT; EKU is client, server, ocsp or any
//	interop tls ADDR ROOT CHAIN KEY         mutual TLS with ALPN h2, then a gRPC health check over HTTP/2
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

var failed bool

func report(what string, err error) {
	if err != nil {
		failed = true
		fmt.Printf("FAIL %s: %v\n", what, err)
	} else {
		fmt.Printf("ok %s\n", what)
	}
}

// blocks returns the DER of every PEM block of type typ in data, or data
// itself if it is not PEM.
func blocks(data []byte, typ string) [][]byte {
	var out [][]byte
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == typ {
			out = append(out, b.Bytes)
		}
	}
	if len(out) == 0 && !bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----")) {
		out = append(out, data)
	}
	return out
}

func readCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ders := blocks(data, "CERTIFICATE")
	if len(ders) == 0 {
		return nil, errors.New("no certificate in file")
	}
	var certs []*x509.Certificate
	for i, der := range ders {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", i, err)
		}
		certs = append(certs, c)
	}
	return certs, nil
}

func parseCerts(files []string) {
	for _, f := range files {
		certs, err := readCerts(f)
		if err == nil {
			for _, c := range certs {
				// Make sure Go sees the trust-level extension as an
				// ordinary, non-critical extension it carries along.
				for _, u := range c.UnhandledCriticalExtensions {
					err = fmt.Errorf("unhandled critical extension %v", u)
				}
			}
		}
		report("cert "+f, err)
	}
}

func parseCRLs(pairs []string) {
	for _, p := range pairs {
		crlPath, issuerPath, ok := strings.Cut(p, "=")
		if !ok {
			report("crl "+p, errors.New("argument must be CRL=ISSUER"))
			continue
		}
		err := func() error {
			data, err := os.ReadFile(crlPath)
			if err != nil {
				return err
			}
			ders := blocks(data, "X509 CRL")
			if len(ders) != 1 {
				return fmt.Errorf("expected one CRL, found %d", len(ders))
			}
			crl, err := x509.ParseRevocationList(ders[0])
			if err != nil {
				return err
			}
			issuers, err := readCerts(issuerPath)
			if err != nil {
				return fmt.Errorf("issuer: %w", err)
			}
			if err := crl.CheckSignatureFrom(issuers[0]); err != nil {
				return fmt.Errorf("signature: %w", err)
			}
			if crl.NextUpdate.Before(crl.ThisUpdate) {
				return errors.New("nextUpdate before thisUpdate")
			}
			return nil
		}()
		report("crl "+crlPath, err)
	}
}

func verify(rootPath, chainPath, eku string) {
	err := func() error {
		roots, err := readCerts(rootPath)
		if err != nil {
			return fmt.Errorf("root: %w", err)
		}
		chain, err := readCerts(chainPath)
		if err != nil {
			return fmt.Errorf("chain: %w", err)
		}
		opts := x509.VerifyOptions{
			Roots:         x509.NewCertPool(),
			Intermediates: x509.NewCertPool(),
		}
		opts.Roots.AddCert(roots[0])
		for _, c := range chain[1:] {
			opts.Intermediates.AddCert(c)
		}
		switch eku {
		case "client":
			opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		case "server":
			opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		case "ocsp":
			opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}
		case "any":
			opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
		default:
			return fmt.Errorf("unknown EKU %q", eku)
		}
		chains, err := chain[0].Verify(opts)
		if err != nil {
			return err
		}
		if len(chains) == 0 {
			return errors.New("no chain")
		}
		return nil
	}()
	report(fmt.Sprintf("verify %s (%s)", chainPath, eku), err)
}

func tlsCheck(addr, rootPath, chainPath, keyPath string) {
	err := func() error {
		roots, err := readCerts(rootPath)
		if err != nil {
			return fmt.Errorf("root: %w", err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(roots[0])
		pair, err := tls.LoadX509KeyPair(chainPath, keyPath)
		if err != nil {
			return fmt.Errorf("client credential: %w", err)
		}
		host, _, _ := strings.Cut(addr, ":")
		cfg := &tls.Config{
			RootCAs:      pool,
			Certificates: []tls.Certificate{pair},
			ServerName:   host,
			NextProtos:   []string{"h2"},
			MinVersion:   tls.VersionTLS12,
		}
		conn, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			return fmt.Errorf("handshake: %w", err)
		}
		st := conn.ConnectionState()
		conn.Close()
		if !st.HandshakeComplete {
			return errors.New("handshake incomplete")
		}
		if st.NegotiatedProtocol != "h2" {
			return fmt.Errorf("ALPN negotiated %q, want h2", st.NegotiatedProtocol)
		}
		if len(st.VerifiedChains) == 0 {
			return errors.New("server chain not verified")
		}
		version := map[uint16]string{tls.VersionTLS12: "TLS 1.2", tls.VersionTLS13: "TLS 1.3"}[st.Version]
		fmt.Printf("   tls: %s, ALPN %s, server %q\n", version,
			st.NegotiatedProtocol, st.PeerCertificates[0].Subject.CommonName)

		// A gRPC call over Go's own HTTP/2 client: grpc.health.v1.Health/Check
		// with an empty request (5-byte frame: uncompressed, length 0).
		client := &http.Client{
			Timeout:   10 * time.Second,
			Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true},
		}
		req, err := http.NewRequest("POST", "https://"+addr+"/grpc.health.v1.Health/Check",
			bytes.NewReader([]byte{0, 0, 0, 0, 0}))
		if err != nil {
			return err
		}
		req.Header.Set("content-type", "application/grpc")
		req.Header.Set("te", "trailers")
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("gRPC over HTTP/2: %w", err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("gRPC body: %w", err)
		}
		if resp.ProtoMajor != 2 {
			return fmt.Errorf("response over HTTP/%d, want 2", resp.ProtoMajor)
		}
		status := resp.Trailer.Get("grpc-status")
		if status == "" {
			status = resp.Header.Get("grpc-status")
		}
		if status != "0" {
			return fmt.Errorf("grpc-status %q (%s)", status, resp.Trailer.Get("grpc-message"))
		}
		// HealthCheckResponse{status: SERVING(1)} is field 1, varint 1.
		if len(body) < 5 || binary.BigEndian.Uint32(body[1:5]) != uint32(len(body)-5) ||
			!bytes.Equal(body[5:], []byte{0x08, 0x01}) {
			return fmt.Errorf("unexpected health response % x", body)
		}
		fmt.Printf("   grpc: Health/Check SERVING over HTTP/2\n")
		return nil
	}()
	report("tls "+addr+" as "+chainPath, err)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: interop cert|crl|verify|tls ...")
		os.Exit(2)
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "cert":
		parseCerts(args)
	case "crl":
		parseCRLs(args)
	case "verify":
		if len(args) != 3 {
			fmt.Fprintln(os.Stderr, "usage: interop verify ROOT CHAIN EKU")
			os.Exit(2)
		}
		verify(args[0], args[1], args[2])
	case "tls":
		if len(args) != 4 {
			fmt.Fprintln(os.Stderr, "usage: interop tls ADDR ROOT CHAIN KEY")
			os.Exit(2)
		}
		tlsCheck(args[0], args[1], args[2], args[3])
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}
