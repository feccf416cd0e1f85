//! The console's listener: TLS only (rustls, ring), HTTP/1.1, a bounded
//! number of connections, a deadline on each handshake and on each
//! request's headers. The console never speaks plaintext: its cookies are
//! `Secure` and its pages hold personal data.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use popbase_common::Shutdown;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 256;
/// A TLS handshake that takes longer is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A request whose headers take longer to arrive is dropped.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("console TLS file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("console TLS: {0}")]
    Config(String),
}

/// The verified subject CN of the client certificate a connection
/// presented (an operator's), if it presented one.
#[derive(Debug, Clone, Default)]
pub struct PeerCertificate(pub Option<String>);

/// The server side of the console's TLS from PEM files; with `client_ca`,
/// a client may present a certificate of that CA (operators), and one of
/// any other CA fails the handshake.
pub fn server_config(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<Arc<ServerConfig>, TlsError> {
    let file_error = |path: &Path, reason: String| TlsError::File {
        path: path.display().to_string(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_error(cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(file_error(cert, "holds no certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca).map_err(|e| file_error(ca, e.to_string()))? {
                roots
                    .add(cert.map_err(|e| file_error(ca, e.to_string()))?)
                    .map_err(|e| file_error(ca, e.to_string()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `router` over TLS on `listener` until `shutdown` fires.
pub async fn serve(router: axum::Router, listener: TcpListener, tls: Arc<ServerConfig>, shutdown: Shutdown) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    let places = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let place = tokio::select! {
            _ = shutdown.wait() => return Ok(()),
            place = places.clone().acquire_owned() => place.map_err(std::io::Error::other)?,
        };
        let (socket, _) = tokio::select! {
            _ = shutdown.wait() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "console accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (acceptor, router, shutdown) = (acceptor.clone(), router.clone(), shutdown.clone());
        tokio::spawn(async move {
            let _place = place;
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await {
                Ok(Ok(stream)) => stream,
                // A failed or slow handshake is the client's problem; nothing to log per connection.
                _ => return,
            };
            // The verified client certificate's CN, for the certificate sign-in.
            let peer = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|leaf| popbase_common::cert::subject_common_name(leaf));
            let service = TowerToHyperService::new(router.layer(axum::Extension(PeerCertificate(peer))));
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = shutdown.wait() => connection.as_mut().graceful_shutdown(),
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
        });
    }
}
