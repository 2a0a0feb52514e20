//! mp4-fcgi: a FastCGI responder for MP4 pseudo-streaming.
//!
//! Four rooms with narrow doors:
//! - [`mp4`]: the pure engine (index a file, plan a window, write a new moov).
//! - [`fcgi`]: the sans-io FastCGI codec.
//! - [`http`]: pure HTTP semantics (query, Range, conditionals, status).
//! - [`manifest`]: HLS playlists and the DASH MPD of a packaged film (pure).
//! - [`origin`]: films in object storage (S3-compatible or plain HTTP),
//!   read by ranges through the `object_store` crate; the server drives it.
//! - [`server`]: the only room that touches sockets, files and processes.
//!
//! [`picture`] decodes thumbnails and seek-bar sprites with the system's
//! libavcodec (the `thumbnails` feature), from what `mp4::cmaf::thumbs`
//! plans; the server runs it on a thread of its own.
//! [`protect`] reads the key file: which films are encrypted, and how.
//! [`output`] is the one output queue both codecs (FastCGI, and the
//! development listener's HTTP) fill and the server drains.

pub mod fcgi;
pub mod http;
pub mod manifest;
pub mod mp4;
pub mod origin;
pub mod output;
pub mod package;
pub mod picture;
pub mod protect;
pub mod server;
