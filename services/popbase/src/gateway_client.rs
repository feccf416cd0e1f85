//! How the CLI's department commands (`export`, `subscribe`) reach the
//! gateway: its URL, and a token or a client certificate, as a department
//! system would.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

#[derive(Args, Debug)]
pub struct GatewayArgs {
    /// The gateway, e.g. https://gateway.popbase:50051 or http://127.0.0.1:50051.
    #[arg(long, env = "POPBASE_GATEWAY_URL")]
    pub gateway: String,
    /// A department token (token mode), e.g. from `popbase token`.
    #[arg(long, env = "POPBASE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate (PEM) the gateway's certificate is checked against.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// The department's client certificate and key (PEM), for mTLS.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// The private key (PEM) of `--cert`.
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Name the gateway's certificate must carry, when it differs from the URL's host.
    #[arg(long)]
    pub domain_name: Option<String>,
}

/// Largest HTTP/2 frame the gateway may send: record batches are about a
/// megabyte each, and at HTTP/2's default of 16 KiB each one arrived as
/// some seventy frames (a quarter of the load tester's CPU per row went
/// on them).
const FRAME_BYTES: u32 = 1 << 20;

impl GatewayArgs {
    pub async fn channel(&self) -> anyhow::Result<Channel> {
        let mut endpoint = Channel::from_shared(self.gateway.clone())
            .context("--gateway")?
            .max_frame_size(FRAME_BYTES);
        if self.gateway.starts_with("https://") {
            let mut tls = ClientTlsConfig::new();
            if let Some(ca) = &self.ca {
                tls = tls.ca_certificate(Certificate::from_pem(
                    std::fs::read(ca).with_context(|| format!("{}", ca.display()))?,
                ));
            }
            if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
                let cert = std::fs::read(cert).with_context(|| format!("{}", cert.display()))?;
                let key = std::fs::read(key).with_context(|| format!("{}", key.display()))?;
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            if let Some(name) = &self.domain_name {
                tls = tls.domain_name(name.clone());
            }
            endpoint = endpoint.tls_config(tls).context("TLS settings")?;
        }
        endpoint.connect().await.with_context(|| format!("connecting to {}", self.gateway))
    }

    /// `message` as a request carrying the token, when there is one.
    pub fn request<T>(&self, message: T) -> anyhow::Result<tonic::Request<T>> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.token {
            let value: MetadataValue<_> = format!("Bearer {}", token.trim())
                .parse()
                .context("--token is not a header value")?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}
