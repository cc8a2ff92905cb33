//! Test certificates for the TLS tests, made at test time with the
//! `openssl` command (so no key material lives in the repository): a CA;
//! a server certificate for `127.0.0.1` and `localhost` and a client
//! certificate, both issued by it; and a second CA, trusted by nobody,
//! with a client certificate of its own. RSA keys, PEM, unencrypted.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory of generated certificates and keys.
pub struct Certs {
    dir: PathBuf,
}

impl Certs {
    /// Generates everything into `dir` (created if need be).
    pub fn generate(dir: &Path) -> Certs {
        std::fs::create_dir_all(dir).unwrap();
        let certs = Certs {
            dir: dir.to_path_buf(),
        };
        certs.ca("ca");
        certs.leaf(
            "ca",
            "server",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        );
        certs.leaf("ca", "client", "extendedKeyUsage=clientAuth\n");
        certs.ca("rogue-ca");
        certs.leaf("rogue-ca", "rogue-client", "extendedKeyUsage=clientAuth\n");
        certs.leaf(
            "rogue-ca",
            "rogue-server",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        );
        certs
    }

    /// `<name>.crt`: a certificate (the CAs are `ca` and `rogue-ca`).
    pub fn crt(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.crt"))
    }

    /// `<name>.key`: its private key.
    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.key"))
    }

    /// A self-signed CA certificate.
    fn ca(&self, name: &str) {
        openssl(
            &self.dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN=chestnode test {name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.crt"),
            ],
        );
    }

    /// An end-entity certificate issued by `ca`, with `extensions` (lines
    /// of an OpenSSL extension file).
    fn leaf(&self, ca: &str, name: &str, extensions: &str) {
        let extension_file = format!("{name}.ext");
        std::fs::write(
            self.dir.join(&extension_file),
            format!("basicConstraints=CA:FALSE\n{extensions}"),
        )
        .unwrap();
        openssl(
            &self.dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={name}"),
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
            ],
        );
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.crt"),
                "-CAkey",
                &format!("{ca}.key"),
                "-set_serial",
                &serial(name),
                "-extfile",
                &extension_file,
                "-out",
                &format!("{name}.crt"),
            ],
        );
    }
}

/// A serial number of its own for each certificate (FNV-1a of its name).
fn serial(name: &str) -> String {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{}", hash >> 1)
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command is installed");
    assert!(
        output.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}
