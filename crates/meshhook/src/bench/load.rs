//! A minimal HTTP/1.1 keep-alive client for load generation.
//!
//! The ingest benchmark runs its load generator on the same two cores as
//! the API and PostgreSQL, so every microsecond the generator spends is
//! taken from what it measures. A general-purpose client (connection pool,
//! header maps, body streams) costs several times what the server spends
//! parsing the same request. This one writes a request that was formatted
//! into a reused buffer in one `write_all` and reads just enough of the
//! answer to know its status and where it ends (`Content-Length`; chunked
//! answers are refused as unsupported). One [`Conn`] per client loop.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// One keep-alive connection.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends one complete request and returns the answer's status code
    /// once its whole body has arrived (the body is discarded).
    pub async fn exchange(&mut self, request: &[u8]) -> io::Result<u16> {
        self.stream.write_all(request).await?;
        loop {
            if let Some(head) = find(&self.buf, b"\r\n\r\n") {
                let (status, length) = parse_head(&self.buf[..head])?;
                let total = head + 4 + length;
                while self.buf.len() < total {
                    self.fill().await?;
                }
                self.buf.drain(..total);
                return Ok(status);
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> io::Result<()> {
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Status code and `Content-Length` of a response head (without the
/// blank line).
fn parse_head(head: &[u8]) -> io::Result<(u16, usize)> {
    let head = std::str::from_utf8(head).map_err(|_| bad("a response head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.strip_prefix("HTTP/1.1 "))
        .and_then(|l| l.get(..3))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("a response has no HTTP/1.1 status line"))?;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(bad("chunked responses are not supported"));
        }
    }
    Ok((status, length.unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_and_length() {
        let (s, n) =
            parse_head(b"HTTP/1.1 202 Accepted\r\ncontent-type: x\r\nContent-Length: 17").unwrap();
        assert_eq!((s, n), (202, 17));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked").is_err());
        assert!(parse_head(b"garbage").is_err());
    }

    #[tokio::test]
    async fn exchanges_over_keep_alive() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let answers: [&[&[u8]]; 2] = [
                // In pieces, to exercise partial reads of head and body.
                &[
                    b"HTTP/1.1 202 Accepted\r\nContent-Le",
                    b"ngth: 5\r\n\r\nab",
                    b"cde",
                ],
                &[b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"],
            ];
            for pieces in answers {
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf).await.unwrap();
                    got.extend_from_slice(&buf[..n]);
                }
                for p in pieces {
                    s.write_all(p).await.unwrap();
                    s.flush().await.unwrap();
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            }
        });
        let mut c = Conn::connect(addr).await.unwrap();
        let req = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";
        assert_eq!(c.exchange(req).await.unwrap(), 202);
        assert_eq!(c.exchange(req).await.unwrap(), 404);
        server.await.unwrap();
    }
}
