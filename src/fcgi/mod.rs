//! The FastCGI protocol codec, sans-io: bytes in, events out; responses into
//! buffers the caller owns. Names follow the FastCGI 1.0 specification.
