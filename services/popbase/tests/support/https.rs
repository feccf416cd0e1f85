//! A small HTTPS client for the console's tests: one request per
//! connection (`Connection: close`), the server's certificate checked
//! against the test's CA, the response split into status, headers and body.

use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls_pki_types::pem::PemObject as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

pub struct Reply {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

pub struct Browser {
    addr: String,
    tls: TlsConnector,
    /// The session cookie (`name=value`), once one was set.
    pub cookie: Option<String>,
}

impl Browser {
    /// A client of the console at `addr` trusting the PEM CA `ca_pem`.
    pub fn new(addr: &str, ca_pem: &str) -> Browser {
        Self::build(addr, ca_pem, None)
    }

    /// [`Browser::new`] presenting a client certificate (PEM pair).
    pub fn with_certificate(addr: &str, ca_pem: &str, cert_pem: &str, key_pem: &str) -> Browser {
        Self::build(addr, ca_pem, Some((cert_pem, key_pem)))
    }

    fn build(addr: &str, ca_pem: &str, client: Option<(&str, &str)>) -> Browser {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.expect("CA pem")).expect("add CA");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots);
        let config = match client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .expect("cert pem");
                let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key pem");
                builder.with_client_auth_cert(chain, key).expect("client certificate")
            }
        };
        Browser {
            addr: addr.to_string(),
            tls: TlsConnector::from(Arc::new(config)),
            cookie: None,
        }
    }

    /// Whether a TLS handshake with the console succeeds (a client
    /// certificate of another CA must fail it).
    pub async fn handshake(&self) -> bool {
        let tcp = TcpStream::connect(&self.addr).await.expect("connect console");
        let name = ServerName::try_from("localhost").expect("name");
        match self.tls.connect(name, tcp).await {
            // TLS 1.3: the server checks the client's certificate after the
            // client finished; a refusal shows on the first read.
            Ok(mut tls) => {
                let request = format!("GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.addr);
                let mut raw = Vec::new();
                tls.write_all(request.as_bytes()).await.is_ok() && tls.read_to_end(&mut raw).await.is_ok() && !raw.is_empty()
            }
            Err(_) => false,
        }
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.send("GET", path, None, &[]).await
    }

    /// A form POST (fields URL-encoded) with extra headers.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)], extra: &[(&str, &str)]) -> Reply {
        let body = fields
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        self.send("POST", path, Some(body), extra).await
    }

    async fn send(&mut self, method: &str, path: &str, body: Option<String>, extra: &[(&str, &str)]) -> Reply {
        let tcp = TcpStream::connect(&self.addr).await.expect("connect console");
        let name = ServerName::try_from("localhost").expect("name");
        let mut tls = self.tls.connect(name, tcp).await.expect("TLS handshake");
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.addr);
        if let Some(cookie) = &self.cookie {
            request.push_str(&format!("Cookie: {cookie}\r\n"));
        }
        for (name, value) in extra {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        let body = body.unwrap_or_default();
        if method == "POST" {
            request.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        request.push_str("\r\n");
        request.push_str(&body);
        tls.write_all(request.as_bytes()).await.expect("send");
        let mut raw = Vec::new();
        // The server closes after the response; a TLS close without
        // close_notify is still the end.
        let _ = tls.read_to_end(&mut raw).await;
        let text = String::from_utf8_lossy(&raw).to_string();
        let (head, rest) = text.split_once("\r\n\r\n").expect("a response head");
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
        let body = if chunked { dechunk(rest) } else { rest.to_string() };
        let reply = Reply { status, headers, body };
        if let Some(set) = reply.header("set-cookie") {
            let pair = set.split(';').next().unwrap_or("").to_string();
            self.cookie = if pair.ends_with('=') { None } else { Some(pair) };
        }
        reply
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

/// The value of the hidden form token in a page.
pub fn csrf(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a form token in the page") + marker.len();
    page[start..].split('"').next().expect("token").to_string()
}
