//! Browser sessions: a random id in a `__Host-` cookie (Secure, HttpOnly,
//! SameSite=Strict), everything else server-side. A session holds who signed
//! in (an operator's department and token, or a resident's ID number), the
//! form token every state-changing form must carry (CSRF), and an operator's
//! last audit search, so later pages need no ID number in a form or URL.
//! Sessions end after [`IDLE`] without a request and after [`LONGEST`] in
//! all; at most [`MAX_SESSIONS`] are open, and a sign-in beyond that is
//! refused rather than pushing someone else out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};

/// A session ends after this long without a request.
pub const IDLE: Duration = Duration::from_secs(15 * 60);
/// And after this long in all, however busy.
pub const LONGEST: Duration = Duration::from_secs(8 * 3600);
/// Most sessions open at once.
pub const MAX_SESSIONS: usize = 10_000;
/// The session cookie's name: `__Host-` binds it to this origin, path `/`, Secure.
pub const COOKIE: &str = "__Host-popbase-console";

/// Who a session belongs to.
#[derive(Clone, PartialEq, Eq)]
pub enum Who {
    /// Someone of an operator department (the big-data bureau, the audit
    /// bureau), acting under their department's purpose with the token they
    /// signed in with, or (signed in by client certificate: `None`) tokens
    /// the console mints for their department per request.
    Operator {
        department: String,
        token: Option<String>,
        purpose: String,
    },
    /// A resident the service platform vouched for.
    Resident { id_number: String },
}

impl std::fmt::Debug for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token nor the ID number.
        match self {
            Who::Operator { department, .. } => write!(f, "Operator({department})"),
            Who::Resident { .. } => f.write_str("Resident"),
        }
    }
}

/// The criteria of an operator's audit search, kept for its later pages
/// and its CSV export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SavedSearch {
    pub subject_id_number: String,
    pub department: String,
    pub interface: String,
    pub from_unix_millis: i64,
    pub to_unix_millis: i64,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub who: Who,
    /// The form token of this session (hex).
    pub csrf: String,
    pub search: Option<SavedSearch>,
    /// A resident's minor child whose record they opened as guardian
    /// (the gateway checked the registry names them).
    pub child: Option<String>,
    opened: Instant,
    seen: Instant,
}

impl Session {
    /// Whether `given` is this session's form token (constant time).
    pub fn csrf_matches(&self, given: &str) -> bool {
        self.csrf.len() == given.len() && self.csrf.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    #[error("too many open sessions; try again later")]
    Full,
    #[error("no randomness for a session id")]
    Random,
}

/// The open sessions of this console process.
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
    random: SystemRandom,
    idle: Duration,
}

impl Default for Sessions {
    fn default() -> Self {
        Self::with_idle(IDLE)
    }
}

impl Sessions {
    pub fn with_idle(idle: Duration) -> Self {
        Self {
            open: Mutex::new(HashMap::new()),
            random: SystemRandom::new(),
            idle,
        }
    }

    fn random_hex(&self) -> Result<String, SessionError> {
        let mut bytes = [0u8; 32];
        self.random.fill(&mut bytes).map_err(|_| SessionError::Random)?;
        Ok(hex::encode(bytes))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock leaves plain data; keep serving.
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Opens a session for `who`; its id (the cookie's value).
    pub fn open(&self, who: Who) -> Result<String, SessionError> {
        let (id, csrf) = (self.random_hex()?, self.random_hex()?);
        let now = Instant::now();
        let mut open = self.lock();
        if open.len() >= MAX_SESSIONS {
            open.retain(|_, s| self.alive(s, now));
            if open.len() >= MAX_SESSIONS {
                return Err(SessionError::Full);
            }
        }
        open.insert(
            id.clone(),
            Session {
                who,
                csrf,
                search: None,
                child: None,
                opened: now,
                seen: now,
            },
        );
        Ok(id)
    }

    fn alive(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.seen) < self.idle && now.duration_since(s.opened) < LONGEST
    }

    /// The live session with `id` (a copy), marking it seen; an expired
    /// one is dropped.
    pub fn get(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut open = self.lock();
        let session = open.get_mut(id)?;
        if !self.alive(session, now) {
            open.remove(id);
            return None;
        }
        session.seen = now;
        Some(session.clone())
    }

    /// Keeps `search` as the session's audit search.
    pub fn save_search(&self, id: &str, search: SavedSearch) {
        if let Some(session) = self.lock().get_mut(id) {
            session.search = Some(search);
        }
    }

    /// Keeps the child whose record a guardian opened.
    pub fn save_child(&self, id: &str, child: String) {
        if let Some(session) = self.lock().get_mut(id) {
            session.child = Some(child);
        }
    }

    pub fn close(&self, id: &str) {
        self.lock().remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resident() -> Who {
        Who::Resident {
            id_number: "370302201001011234".into(),
        }
    }

    #[test]
    fn sessions_are_random_expire_when_idle_and_close() {
        let sessions = Sessions::with_idle(Duration::from_millis(200));
        let a = sessions.open(resident()).expect("open");
        let b = sessions.open(resident()).expect("open");
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        let session = sessions.get(&a).expect("live");
        assert!(session.csrf_matches(&session.csrf.clone()));
        assert!(!session.csrf_matches(""));
        assert!(!session.csrf_matches(&"0".repeat(64)));
        assert!(sessions.get("not-a-session").is_none());
        sessions.close(&b);
        assert!(sessions.get(&b).is_none());
        std::thread::sleep(Duration::from_millis(250));
        assert!(sessions.get(&a).is_none(), "idle past the limit");
    }

    #[test]
    fn debug_output_names_no_token_and_no_id_number() {
        let operator = Who::Operator {
            department: "audit".into(),
            token: Some("v2.audit.1.2.secret".into()),
            purpose: "AUDIT".into(),
        };
        assert_eq!(format!("{operator:?}"), "Operator(audit)");
        assert_eq!(format!("{:?}", resident()), "Resident");
    }
}
