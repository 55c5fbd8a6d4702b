//! The local API's server: one accept loop for plain TCP and TLS (rustls), each
//! connection told its peer's address (reads are open only on loopback), and bounded in
//! time so a slow or stalled client cannot hold a connection: the request head must
//! arrive within [`HEADER_TIMEOUT`], a TLS handshake within [`HANDSHAKE_TIMEOUT`], and a
//! connection lasts at most [`CONNECTION_TIMEOUT`].

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use axum::{Extension, Router};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);

/// The address a request came from.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path} holds no certificate")]
    NoCertificate { path: String },
    #[error("the API's certificate and key do not make a TLS configuration")]
    Config(#[from] rustls::Error),
}

/// A TLS acceptor from PEM files: the certificate chain and its private key.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let read = |path: &Path| {
        let path = path.display().to_string();
        move |source| TlsError::Read { path, source }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(read(cert))?
        .collect::<Result<_, _>>()
        .map_err(read(cert))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.display().to_string(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(read(key))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` on `listener` (TLS when `tls` is given) until `cancel`.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    info!(addr = ?listener.local_addr().ok(), tls = tls.is_some(), "local API listening");
    loop {
        let (stream, peer) = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: say so, and go on.
                    warn!(error = %e, "local API: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(app.clone().layer(Extension(Peer(peer))));
        let tls = tls.clone();
        tokio::spawn(async move {
            // HTTP/1.1 only: the API's clients (curl, scripts, a screen) need nothing
            // more, and HTTP/2 would add its own stack to the gateway's binary.
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let served = match tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    tokio::time::timeout(CONNECTION_TIMEOUT, conn).await
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                    let Ok(Ok(stream)) = handshake else {
                        debug!(%peer, "local API: TLS handshake failed or timed out");
                        return;
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    tokio::time::timeout(CONNECTION_TIMEOUT, conn).await
                }
            };
            match served {
                Err(_) => debug!(%peer, "local API: connection closed after its time limit"),
                Ok(Err(e)) => debug!(%peer, error = %e, "local API: connection ended"),
                Ok(Ok(())) => {}
            }
        });
    }
    Ok(())
}
