//! The chain head kept outside the store: every interval (and at shutdown)
//! the newest record's `seq hash time`, signed with the ledger's Ed25519
//! key, is appended to the head file and to a mirror on another volume,
//! and logged. Whoever rewrites the store must then also match every head
//! already handed out; `popbase audit verify --head FILE` checks every
//! line of it, and its signature against the published public key.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use popbase_common::Shutdown;
use popbase_proto::gateway::ChainHead;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use thiserror::Error;

use super::AuditLog;

#[derive(Debug, Error)]
pub enum HeadError {
    #[error("head key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("head file {path} line {line}: {reason}")]
    Line { path: PathBuf, line: usize, reason: String },
    #[error("head file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// One line of a head file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadLine {
    /// 1-based line number in its file.
    pub line: usize,
    pub seq: u64,
    pub hash: Vec<u8>,
    pub at_unix_millis: i64,
    /// Ed25519 signature over [`signed_bytes`]; absent in lines written
    /// before heads were signed.
    pub signature: Option<Vec<u8>>,
}

/// What a head signature covers.
fn signed_bytes(seq: u64, hash: &[u8], at_unix_millis: i64) -> Vec<u8> {
    format!("popbase-audit-head-v1 {seq} {} {at_unix_millis}", hex::encode(hash)).into_bytes()
}

/// The ledger's head-signing key, kept as PKCS#8 beside its store (created
/// on first start); its public half is published as hex (`public_hex`).
pub struct HeadSigner {
    pair: Ed25519KeyPair,
}

impl HeadSigner {
    pub fn load_or_create(path: &Path) -> Result<Self, HeadError> {
        let key_err = |reason: String| HeadError::Key {
            path: path.to_path_buf(),
            reason,
        };
        let pkcs8 = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| key_err("cannot generate".into()))?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| key_err(e.to_string()))?;
                }
                write_private(path, document.as_ref()).map_err(|e| key_err(e.to_string()))?;
                document.as_ref().to_vec()
            }
            Err(e) => return Err(key_err(e.to_string())),
        };
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| key_err("not an Ed25519 PKCS#8 key".into()))?;
        Ok(Self { pair })
    }

    pub fn public_hex(&self) -> String {
        hex::encode(self.pair.public_key().as_ref())
    }

    /// The signed line for `head`: `<seq> <hash> <millis> <signature>`.
    pub fn line(&self, head: &ChainHead) -> String {
        let signature = self.pair.sign(&signed_bytes(head.seq, &head.hash, head.at_unix_millis));
        format!(
            "{} {} {} {}\n",
            head.seq,
            hex::encode(&head.hash),
            head.at_unix_millis,
            hex::encode(signature.as_ref())
        )
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// An unsigned line (tests and older files): `<seq> <hash> <millis>`.
pub fn format_line(head: &ChainHead) -> String {
    format!("{} {} {}\n", head.seq, hex::encode(&head.hash), head.at_unix_millis)
}

/// Every head line of `path`, in order.
pub fn read_all(path: &Path) -> Result<Vec<HeadLine>, HeadError> {
    let text = std::fs::read_to_string(path).map_err(|source| HeadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let bad = |reason: &str| HeadError::Line {
            path: path.to_path_buf(),
            line: index + 1,
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = raw.split_whitespace().collect();
        let (seq, hash, millis) = match parts.as_slice() {
            [seq, hash, millis, ..] => (seq, hash, millis),
            _ => return Err(bad("expected `seq hash millis [signature]`")),
        };
        out.push(HeadLine {
            line: index + 1,
            seq: seq.parse().map_err(|_| bad("the sequence is not a number"))?,
            hash: hex::decode(hash).map_err(|_| bad("the hash is not hex"))?,
            at_unix_millis: millis.parse().map_err(|_| bad("the time is not a number"))?,
            signature: match parts.get(3) {
                Some(sig) => Some(hex::decode(sig).map_err(|_| bad("the signature is not hex"))?),
                None => None,
            },
        });
    }
    Ok(out)
}

/// The heads of `path` for [`super::verify::verify`], each naming its line.
pub fn kept(path: &Path) -> Result<Vec<super::verify::KeptHead>, HeadError> {
    Ok(read_all(path)?
        .into_iter()
        .map(|l| super::verify::KeptHead {
            seq: l.seq,
            hash: l.hash,
            origin: format!("{} line {}", path.display(), l.line),
        })
        .collect())
}

/// Whether `line` carries a valid signature by the key `public_hex`.
pub fn signature_holds(line: &HeadLine, public_hex: &str) -> bool {
    let (Ok(public), Some(signature)) = (hex::decode(public_hex.trim()), &line.signature) else {
        return false;
    };
    UnparsedPublicKey::new(&ED25519, public)
        .verify(&signed_bytes(line.seq, &line.hash, line.at_unix_millis), signature)
        .is_ok()
}

fn append(path: &Path, line: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(line.as_bytes())?;
    file.sync_data()
}

/// Appends the signed head to every one of `sinks` (the head file and its
/// mirror on another volume) whenever it moved, every `interval` and once
/// more when `shutdown` fires. A sink that fails is logged and retried at
/// the next tick; the others still get the line.
pub async fn publish(log: AuditLog, sinks: Vec<PathBuf>, signer: HeadSigner, interval: Duration, shutdown: Shutdown) {
    tracing::info!(public_key = %signer.public_hex(), sinks = sinks.len(), "audit chain heads are signed with this key");
    let mut written: Vec<Option<u64>> = vec![None; sinks.len()];
    let mut tick = tokio::time::interval(interval);
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            () = shutdown.wait() => true,
        };
        let head = log.head();
        if head.seq > 0 && written.iter().any(|w| *w != Some(head.seq)) {
            let line = signer.line(&head);
            for (sink, last) in sinks.iter().zip(written.iter_mut()) {
                if *last == Some(head.seq) {
                    continue;
                }
                match append(sink, &line) {
                    Ok(()) => *last = Some(head.seq),
                    Err(e) => tracing::error!(error = %e, path = %sink.display(), "cannot write the audit chain head"),
                }
            }
            // The log pipeline carries a third copy out of the cluster.
            tracing::info!(seq = head.seq, hash = %hex::encode(&head.hash), line = %line.trim_end(), "audit chain head");
        }
        if stopping {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_head_line_reads_back_and_verifies_only_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("keys/audit-head.pk8");
        let signer = HeadSigner::load_or_create(&key).expect("key");
        let again = HeadSigner::load_or_create(&key).expect("same key");
        assert_eq!(signer.public_hex(), again.public_hex(), "created once, then read");
        let head = ChainHead {
            seq: 7,
            hash: vec![0xab; 32],
            at_unix_millis: 1_764_000_000_000,
        };
        let file = dir.path().join("heads.log");
        std::fs::write(&file, format!("{}{}", format_line(&head), signer.line(&head))).expect("write");
        let lines = read_all(&file).expect("read");
        assert_eq!(lines.len(), 2);
        assert!(!signature_holds(&lines[0], &signer.public_hex()), "unsigned");
        assert!(signature_holds(&lines[1], &signer.public_hex()));
        let mut forged = lines[1].clone();
        forged.seq = 8;
        assert!(
            !signature_holds(&forged, &signer.public_hex()),
            "a changed sequence breaks the signature"
        );
        let other = HeadSigner::load_or_create(&dir.path().join("other.pk8")).expect("key");
        assert!(!signature_holds(&lines[1], &other.public_hex()), "another key");
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("heads.log");
        std::fs::write(&file, "1 abcd 5\n2 zz 6\n").expect("write");
        let err = read_all(&file).expect_err("bad hash");
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
