//! The mesh's check on every call to an internal role's port: the TLS
//! handshake has proven the caller holds a certificate of the internal CA;
//! this layer reads which identity it names and lets the call through only
//! when [`policy::allowed`] says that identity may call the service.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use super::MeshIdentity;
use super::policy::{self, ROLE_NOT_ALLOWED};
use crate::Role;
use crate::error::REASON_METADATA_KEY;

/// Tower layer over an internal role's routes. `own` is the serving
/// process's mesh identity; `None` passes every call (a plaintext
/// development port, or the gateway's department port).
#[derive(Clone, Copy)]
pub struct MeshGuardLayer {
    role: Role,
    own: Option<MeshIdentity>,
}

impl MeshGuardLayer {
    pub fn new(role: Role, own: Option<MeshIdentity>) -> Self {
        Self { role, own }
    }

    /// Whether `caller` may call `path` here. The all-in-one identity may
    /// call anything, but only an all-in-one process's own ports: split
    /// roles never have such a peer, so one presenting it is refused.
    fn admits(&self, path: &str, caller: Option<MeshIdentity>) -> bool {
        match (self.own, caller) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(own), Some(MeshIdentity::AllInOne)) => own == MeshIdentity::AllInOne,
            (Some(_), Some(caller)) => policy::allowed(path, caller),
        }
    }
}

impl<S> tower::Layer<S> for MeshGuardLayer {
    type Service = MeshGuard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MeshGuard { inner, layer: *self }
    }
}

#[derive(Clone)]
pub struct MeshGuard<S> {
    inner: S,
    layer: MeshGuardLayer,
}

/// The mesh identity of the certificate the caller presented on this connection.
fn caller<B>(request: &http::Request<B>) -> Option<MeshIdentity> {
    let info = request.extensions().get::<TlsConnectInfo<TcpConnectInfo>>()?;
    let certs = info.peer_certs()?;
    MeshIdentity::of_der(certs.first()?)
}

/// The refusal: `PERMISSION_DENIED`, reason `ROLE_NOT_ALLOWED`. The message
/// names the caller's identity and the service, both from a fixed set, so
/// no caller-chosen text is echoed.
fn refusal<R: Default>(caller: Option<MeshIdentity>, service: &str, role: Role) -> http::Response<R> {
    let known_service = policy::known(service);
    let message = match (caller, known_service) {
        (Some(caller), true) => format!(
            "mesh identity '{}' may not call {service} on the {} role",
            caller.name(),
            role.name()
        ),
        (Some(caller), false) => format!(
            "mesh identity '{}' may not call this service on the {} role",
            caller.name(),
            role.name()
        ),
        (None, _) => format!(
            "the client certificate names no mesh identity (<role>.roles.popbase); the {} role refuses it",
            role.name()
        ),
    };
    let mut status = tonic::Status::permission_denied(message);
    status
        .metadata_mut()
        .insert(REASON_METADATA_KEY, tonic::metadata::MetadataValue::from_static(ROLE_NOT_ALLOWED));
    status.into_http()
}

impl<S, B, R> tower::Service<http::Request<B>> for MeshGuard<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let identity = caller(&request);
        if !self.layer.admits(request.uri().path(), identity) {
            let service = policy::service_of(request.uri().path());
            tracing::warn!(
                role = self.layer.role.name(),
                caller = identity.map_or("none", MeshIdentity::name),
                service = if policy::known(service) { service } else { "unknown" },
                "mesh call refused"
            );
            let response = refusal(identity, service, self.layer.role);
            return Box::pin(async move { Ok(response) });
        }
        Box::pin(self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MeshIdentity::{AllInOne, Backup, Feeds, Gateway};

    #[test]
    fn split_roles_refuse_the_all_in_one_identity_and_strangers() {
        let split = MeshGuardLayer::new(Role::Household, Some(MeshIdentity::Household));
        let all = MeshGuardLayer::new(Role::Household, Some(AllInOne));
        let open = MeshGuardLayer::new(Role::Household, None);
        let list = "/popbase.household.v1.HouseholdRegistry/ListPersons";
        assert!(split.admits(list, Some(Gateway)));
        assert!(!split.admits(list, Some(AllInOne)), "no all-in-one peer in a split deployment");
        assert!(!split.admits(list, Some(Feeds)));
        assert!(!split.admits(list, None), "a certificate naming no identity");
        assert!(all.admits(list, Some(AllInOne)), "an all-in-one process calls its own ports");
        assert!(!all.admits("/popbase.ops.v1.Ops/CreateCheckpoint", Some(Gateway)));
        assert!(all.admits("/popbase.ops.v1.Ops/CreateCheckpoint", Some(Backup)));
        assert!(open.admits(list, None), "no mesh: nothing enforced");
    }
}
