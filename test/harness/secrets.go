package harness

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nkeys"
)

// DeployUsers are the NATS users of deploy/nats-server.conf, each read there from the
// environment variable FS_NKEY_<USER> as its public nkey.
var DeployUsers = []string{"admin", "gateway", "assets", "workorders", "payroll", "poller"}

// Secrets are the files a secured deployment reads, laid out under one directory as
// deploy/nats-server.conf expects them under /etc/fieldstream.
type Secrets struct {
	Dir        string
	CA         string            // tls/ca.pem: verifies the server
	ServerCert string            // tls/server-cert.pem
	ServerKey  string            // tls/server-key.pem
	Seeds      map[string]string // user → nkeys/<user>.nk, the user's nkey seed
	Env        []string          // FS_NKEY_<USER>=<public nkey>, one per user; also in nkeys.env
}

// WriteSecrets creates a fresh CA, a server certificate it signs for loopback and hosts
// (valid for a year), and an nkey per DeployUsers user, and writes them under dir. The CA's
// key is never written: nothing more can be signed with it. Private keys and seeds are
// written readable by their owner only.
func WriteSecrets(dir string, hosts []string) (Secrets, error) {
	s := Secrets{Dir: dir, CA: filepath.Join(dir, "tls", "ca.pem"), ServerCert: filepath.Join(dir, "tls", "server-cert.pem"),
		ServerKey: filepath.Join(dir, "tls", "server-key.pem"), Seeds: map[string]string{}}
	for _, d := range []string{"tls", "nkeys"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return s, err
		}
	}
	if err := writePKI(s, hosts); err != nil {
		return s, err
	}
	for _, u := range DeployUsers {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return s, err
		}
		seed, err := kp.Seed()
		if err != nil {
			return s, err
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return s, err
		}
		s.Seeds[u] = filepath.Join(dir, "nkeys", u+".nk")
		if err := os.WriteFile(s.Seeds[u], append(seed, '\n'), 0o600); err != nil {
			return s, err
		}
		s.Env = append(s.Env, "FS_NKEY_"+strings.ToUpper(u)+"="+pub)
	}
	return s, os.WriteFile(filepath.Join(dir, "nkeys.env"), []byte(strings.Join(s.Env, "\n")+"\n"), 0o644)
}

func writePKI(s Secrets, hosts []string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fieldstream dev CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	srv := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "fieldstream NATS"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		// Client authentication too: nodes of a cluster present it to each other on routes.
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			srv.IPAddresses = append(srv.IPAddresses, ip)
		} else {
			srv.DNSNames = append(srv.DNSNames, h)
		}
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		path, typ string
		der       []byte
		mode      os.FileMode
	}{{s.CA, "CERTIFICATE", caDER, 0o644}, {s.ServerCert, "CERTIFICATE", srvDER, 0o644}, {s.ServerKey, "EC PRIVATE KEY", keyDER, 0o600}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), f.mode); err != nil {
			return fmt.Errorf("write %s: %w", f.path, err)
		}
	}
	return nil
}

// SecretsCover reports whether dir holds the files WriteSecrets writes, with a server
// certificate valid for at least another week and for every one of hosts, so that they can
// be kept rather than replaced (replacing them would lock out whatever runs with them).
func SecretsCover(dir string, hosts []string) bool {
	for _, f := range append([]string{"tls/ca.pem", "tls/server-key.pem", "nkeys.env"}, func() (seeds []string) {
		for _, u := range DeployUsers {
			seeds = append(seeds, "nkeys/"+u+".nk")
		}
		return seeds
	}()...) {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return false
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "tls", "server-cert.pem"))
	if err != nil {
		return false
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return false
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || time.Until(cert.NotAfter) < 7*24*time.Hour {
		return false
	}
	for _, h := range hosts {
		if cert.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// DeployConfig writes deploy/nats-server.conf (read from src) to root with its paths under
// /etc/fieldstream and /var/lib/fieldstream moved to root/etc and root/var (where
// WriteSecrets(root/etc) puts the secrets) and its client and monitoring addresses
// replaced by clientAddr and monitorAddr (host:port), and returns the written file's path.
// It fails if the file no longer mentions what it replaces.
func DeployConfig(src, root, clientAddr, monitorAddr string) (string, error) {
	b, err := os.ReadFile(src)
	if err != nil {
		return "", err
	}
	conf := string(b)
	for _, r := range [][2]string{
		{"/etc/fieldstream/", filepath.Join(root, "etc") + "/"},
		{"/var/lib/fieldstream/", filepath.Join(root, "var") + "/"},
		{"127.0.0.1:4222", clientAddr},
		{"127.0.0.1:8222", monitorAddr},
	} {
		if !strings.Contains(conf, r[0]) {
			return "", fmt.Errorf("%s no longer mentions %s", src, r[0])
		}
		conf = strings.ReplaceAll(conf, r[0], r[1])
	}
	path := filepath.Join(root, "nats-server.conf")
	return path, os.WriteFile(path, []byte(conf), 0o600)
}
