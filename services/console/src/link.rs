//! The console's one way to data: calls to the gateway's department port,
//! with the signed-in person's credential, exactly as a department's client
//! makes them. The gateway authenticates, authorises (catalogue, purpose,
//! consent), minimises and audits each one; the console adds no path of its
//! own around it.

use std::path::Path;
use std::time::Duration;

use popbase_common::error::{FIELD_METADATA_KEY, REASON_METADATA_KEY};
use popbase_proto::gateway::audit_client::AuditClient;
use popbase_proto::gateway::consents_client::ConsentsClient;
use popbase_proto::gateway::operations_client::OperationsClient;
use popbase_proto::gateway::sharing_catalogue_client::SharingCatalogueClient;
use popbase_proto::gateway::{
    ApplyCatalogueRequest, CatalogueDocument, CatalogueValidation, GetCatalogueRequest, PlatformHealthRequest, PlatformHealthResponse,
    ValidateCatalogueRequest,
};
use popbase_proto::gateway::{
    AuditSearchRequest, AuditSearchResponse, ChainHead, ChainHeadRequest, ChainVerification, ListAccessesRequest, ListAccessesResponse,
    ListConsentsRequest, ListConsentsResponse, RevokeConsentRequest, UsageStatisticsRequest, UsageStatisticsResponse, VerifyChainRequest,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

/// Each call's deadline: a page waits no longer for one answer.
const CALL_DEADLINE: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a call gave no answer, in terms a page can show: the gRPC code, the
/// gateway's reason code (`NOT_APPROVED`, `TOKEN_EXPIRED`, ...) and the
/// field a refusal names. The gateway's messages never hold personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub code: Code,
    pub reason: String,
    pub field: String,
    pub message: String,
}

impl From<Status> for Refused {
    fn from(status: Status) -> Self {
        let meta = |key: &str| status.metadata().get(key).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        Self {
            code: status.code(),
            reason: meta(REASON_METADATA_KEY),
            field: meta(FIELD_METADATA_KEY),
            message: status.message().chars().take(300).collect(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("gateway address {0} is not a URL")]
    Address(String),
    #[error("gateway CA {path}: {source}")]
    Ca { path: String, source: std::io::Error },
    #[error("gateway TLS: {0}")]
    Tls(String),
}

/// A client of the gateway's department port.
#[derive(Clone)]
pub struct GatewayLink {
    channel: Channel,
}

impl GatewayLink {
    /// A lazily connected link to `address` (`http://` or `https://`); an
    /// `https` gateway's certificate must chain to the PEM CA at `ca`.
    pub fn connect_lazy(address: &str, ca: Option<&Path>) -> Result<Self, LinkError> {
        let mut endpoint = Endpoint::from_shared(address.to_string())
            .map_err(|_| LinkError::Address(address.to_string()))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_DEADLINE);
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).map_err(|source| LinkError::Ca {
                path: ca.display().to_string(),
                source,
            })?;
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))
                .map_err(|e| LinkError::Tls(e.to_string()))?;
        }
        Ok(Self {
            channel: endpoint.connect_lazy(),
        })
    }

    fn audit(&self) -> AuditClient<Channel> {
        AuditClient::new(self.channel.clone())
    }

    fn consents(&self) -> ConsentsClient<Channel> {
        ConsentsClient::new(self.channel.clone())
    }

    fn catalogue(&self) -> SharingCatalogueClient<Channel> {
        SharingCatalogueClient::new(self.channel.clone())
    }

    pub async fn get_catalogue(&self, token: &str, purpose: &str) -> Result<CatalogueDocument, Refused> {
        let body = GetCatalogueRequest { purpose: purpose.into() };
        Ok(self.catalogue().get_catalogue(bearer(token, body)?).await?.into_inner())
    }

    pub async fn validate_catalogue(&self, token: &str, body: ValidateCatalogueRequest) -> Result<CatalogueValidation, Refused> {
        Ok(self.catalogue().validate_catalogue(bearer(token, body)?).await?.into_inner())
    }

    pub async fn apply_catalogue(&self, token: &str, body: ApplyCatalogueRequest) -> Result<CatalogueDocument, Refused> {
        Ok(self.catalogue().apply_catalogue(bearer(token, body)?).await?.into_inner())
    }

    pub async fn platform_health(&self, token: &str, purpose: &str) -> Result<PlatformHealthResponse, Refused> {
        let body = PlatformHealthRequest { purpose: purpose.into() };
        Ok(OperationsClient::new(self.channel.clone())
            .platform_health(bearer(token, body)?)
            .await?
            .into_inner())
    }

    pub async fn chain_head(&self, token: &str, purpose: &str) -> Result<ChainHead, Refused> {
        let body = ChainHeadRequest { purpose: purpose.into() };
        Ok(self.audit().get_chain_head(bearer(token, body)?).await?.into_inner())
    }

    pub async fn verify_chain(&self, token: &str, purpose: &str, run: bool) -> Result<ChainVerification, Refused> {
        let body = VerifyChainRequest {
            purpose: purpose.into(),
            run,
        };
        Ok(self.audit().verify_chain(bearer(token, body)?).await?.into_inner())
    }

    pub async fn usage(&self, token: &str, body: UsageStatisticsRequest) -> Result<UsageStatisticsResponse, Refused> {
        Ok(self.audit().usage_statistics(bearer(token, body)?).await?.into_inner())
    }

    pub async fn search_audit(&self, token: &str, body: AuditSearchRequest) -> Result<AuditSearchResponse, Refused> {
        Ok(self.audit().search_audit(bearer(token, body)?).await?.into_inner())
    }

    pub async fn accesses(&self, token: &str, body: ListAccessesRequest) -> Result<ListAccessesResponse, Refused> {
        Ok(self.consents().list_accesses(bearer(token, body)?).await?.into_inner())
    }

    pub async fn consents_of(&self, token: &str, body: ListConsentsRequest) -> Result<ListConsentsResponse, Refused> {
        Ok(self.consents().list_consents(bearer(token, body)?).await?.into_inner())
    }

    pub async fn revoke(&self, token: &str, body: RevokeConsentRequest) -> Result<(), Refused> {
        self.consents().revoke(bearer(token, body)?).await?;
        Ok(())
    }
}

/// `body` with the caller's token and the call's deadline.
fn bearer<T>(token: &str, body: T) -> Result<Request<T>, Refused> {
    let mut request = Request::new(body);
    let value = format!("Bearer {token}")
        .parse()
        .map_err(|_| Refused::from(Status::unauthenticated("the token is not printable ASCII")))?;
    request.metadata_mut().insert("authorization", value);
    request.set_timeout(CALL_DEADLINE);
    Ok(request)
}
