package auth

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"time"
)

// parsedCertificate is a client certificate ready for azidentity: the chain
// with the key's certificate first, and the RSA private key.
type parsedCertificate struct {
	chain []*x509.Certificate
	key   *rsa.PrivateKey
}

// parseCertificate reads PEM holding certificates and one unencrypted RSA
// private key (PKCS#1 or PKCS#8) in any order. Entra signs client assertions
// with RSA only, so other key types are refused.
func parseCertificate(data []byte) (*parsedCertificate, error) {
	certs, key, err := decodePEM(data)
	if err != nil {
		return nil, err
	}
	if key == nil {
		return nil, invalid("certificate: no private key found in PEM")
	}
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, invalid("certificate: private key is %T, Entra needs an RSA key", key)
	}
	leaf := -1
	for i, c := range certs {
		if pub, ok := c.PublicKey.(*rsa.PublicKey); ok && pub.Equal(&rsaKey.PublicKey) {
			leaf = i
			break
		}
	}
	if leaf < 0 {
		return nil, invalid("certificate: private key matches none of the certificates in PEM")
	}
	chain := append([]*x509.Certificate{certs[leaf]}, append(certs[:leaf:leaf], certs[leaf+1:]...)...)
	return &parsedCertificate{chain: chain, key: rsaKey}, nil
}

// decodePEM returns the certificates and the (last) private key in data.
func decodePEM(data []byte) ([]*x509.Certificate, crypto.PrivateKey, error) {
	var (
		certs []*x509.Certificate
		key   crypto.PrivateKey
	)
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch block.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, nil, invalid("certificate: cannot parse certificate #%d: %v", len(certs)+1, err)
			}
			certs = append(certs, c)
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
			k, err := parsePrivateKey(block)
			if err != nil {
				return nil, nil, err
			}
			key = k
		case "ENCRYPTED PRIVATE KEY":
			return nil, nil, invalid("certificate: encrypted private keys are not supported")
		}
	}
	if len(certs) == 0 {
		return nil, nil, invalid("certificate: no certificate found in PEM")
	}
	return certs, key, nil
}

func parsePrivateKey(block *pem.Block) (crypto.PrivateKey, error) {
	if _, ok := block.Headers["DEK-Info"]; ok {
		return nil, invalid("certificate: encrypted private keys are not supported")
	}
	var (
		k   crypto.PrivateKey
		err error
	)
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, invalid("certificate: cannot parse %s: %v", block.Type, err)
	}
	return k, nil
}

// CertificateNotAfter returns the expiry of the leaf certificate in pemData:
// the one matching the private key when the PEM holds a key, else the first.
func CertificateNotAfter(pemData []byte) (time.Time, error) {
	certs, key, err := decodePEM(pemData)
	if err != nil {
		return time.Time{}, err
	}
	if signer, ok := key.(crypto.Signer); ok {
		for _, c := range certs {
			if pub, ok := c.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); ok && pub.Equal(signer.Public()) {
				return c.NotAfter, nil
			}
		}
	}
	return certs[0].NotAfter, nil
}
