// vcsim-imagefactory: govmomi's vCenter simulator (simulator.VPX(): datacenter DC0, one
// cluster, one host, datastore LocalDS_0, network "VM Network") served with TLS on loopback,
// for the vsphere plugin's tests. Built from Debian's golang-github-vmware-govmomi-dev by
// tests/services/vsphere_support/build.sh; no Go module is ever downloaded.
//
// Usage: vcsim-imagefactory -cert FILE -key FILE -username U -password P
// It prints the SDK URL on standard output once it serves, then runs until stdin closes (so it
// never outlives the test session that started it) or it is signalled.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net/url"
	"os"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	cert := flag.String("cert", "", "PEM certificate the server presents")
	key := flag.String("key", "", "PEM private key of the certificate")
	username := flag.String("username", "", "the one user that may log in")
	password := flag.String("password", "", "that user's password")
	flag.Parse()

	pair, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		log.Fatalf("loading the TLS key pair: %v", err)
	}
	model := simulator.VPX()
	if err := model.Create(); err != nil {
		log.Fatalf("creating the inventory: %v", err)
	}
	defer model.Remove()
	model.Service.Listen = &url.URL{Host: "127.0.0.1:0", User: url.UserPassword(*username, *password)}
	model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	server := model.Service.NewServer()
	defer server.Close()

	sdk := *server.URL
	sdk.User = nil
	fmt.Println(sdk.String())
	_, _ = io.Copy(io.Discard, os.Stdin)
}
