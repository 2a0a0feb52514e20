//! What the log says of a request: its method and target, and the note a
//! handler leaves on its answer.

use crate::fcgi::Params;

/// What the log says of a request, besides its method, target, status and
/// time (the connection knows those).
#[derive(Clone, Debug, Default)]
pub struct Note {
    /// Why it was refused (with advice on flags, which the client never sees).
    pub reason: Option<String>,
    /// The window, the key frame chosen, what the caches held.
    pub detail: String,
    /// Logged with others like it, not on its own line.
    pub quiet: bool,
}

/// The request's method and target (`/path?query`) for log lines.
pub fn describe(params: &Params) -> (String, String) {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let method = params
        .get(b"REQUEST_METHOD")
        .map_or_else(|| "GET".into(), text);
    let target = match (params.get(b"REQUEST_URI"), params.get(b"SCRIPT_NAME")) {
        (Some(uri), _) => text(uri),
        (None, name) => {
            let path = name
                .or(params.get(b"SCRIPT_FILENAME"))
                .map_or_else(|| "-".into(), text);
            match params.get(b"QUERY_STRING").filter(|q| !q.is_empty()) {
                Some(q) => format!("{path}?{}", text(q)),
                None => path,
            }
        }
    };
    (method, target)
}
