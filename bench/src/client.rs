//! A minimal blocking HTTP/1.1 client with keep-alive, for driving `kyro serve` on loopback.
//!
//! One `Connection` is one TCP connection reused for every request of one load-generator thread,
//! so the figures do not include a TCP handshake per request. It understands exactly what the
//! runtime sends back (`Content-Length` or chunked bodies) and reconnects when the server closes.
//! It deliberately does not do TLS, redirects or pipelining.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, bail};

/// A status code and a body.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

/// One kept-alive connection to the server.
pub(crate) struct Connection {
    address: SocketAddr,
    stream: Option<BufReader<TcpStream>>,
    request: Vec<u8>,
}

impl Connection {
    pub(crate) fn new(address: SocketAddr) -> Self {
        Self { address, stream: None, request: Vec::with_capacity(16 << 10) }
    }

    /// POSTs a JSON body; retries once on a fresh connection when a kept-alive one was closed.
    pub(crate) fn post(
        &mut self,
        path: &str,
        token: &str,
        body: &[u8],
    ) -> anyhow::Result<Response> {
        self.request.clear();
        write!(
            self.request,
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.address,
            body.len()
        )
        .context("failed to format a request")?;
        self.request.extend_from_slice(body);
        let reused = self.stream.is_some();
        match self.exchange() {
            Ok(response) => Ok(response),
            Err(_) if reused => {
                self.stream = None;
                self.exchange()
            }
            Err(err) => Err(err),
        }
    }

    fn exchange(&mut self) -> anyhow::Result<Response> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.address)
                .with_context(|| format!("failed to connect to {}", self.address))?;
            stream.set_nodelay(true).context("failed to set TCP_NODELAY")?;
            stream
                .set_read_timeout(Some(Duration::from_secs(60)))
                .context("failed to set a read timeout")?;
            self.stream = Some(BufReader::with_capacity(64 << 10, stream));
        }
        let Some(reader) = self.stream.as_mut() else { bail!("no connection") };
        reader.get_mut().write_all(&self.request).context("failed to send a request")?;
        let mut line = String::new();
        reader.read_line(&mut line).context("failed to read the status line")?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .with_context(|| format!("malformed status line {line:?}"))?;
        let mut content_length = None;
        let mut chunked = false;
        let mut close = false;
        loop {
            line.clear();
            let n_read = reader.read_line(&mut line).context("failed to read a header")?;
            if n_read == 0 {
                bail!("the server closed the connection inside the headers");
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else { continue };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                content_length = Some(value.parse::<usize>().context("bad content-length")?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.contains("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        let body = if chunked {
            read_chunked(reader)?
        } else if let Some(length) = content_length {
            let mut body = vec![0; length];
            reader.read_exact(&mut body).context("failed to read a body")?;
            body
        } else {
            close = true;
            let mut body = Vec::new();
            reader.read_to_end(&mut body).context("failed to read a body")?;
            body
        };
        if close {
            self.stream = None;
        }
        Ok(Response { status, body })
    }
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line).context("failed to read a chunk size")?;
        let size = usize::from_str_radix(line.trim(), 16)
            .with_context(|| format!("malformed chunk size {line:?}"))?;
        if size == 0 {
            line.clear();
            reader.read_line(&mut line).context("failed to read the last chunk")?;
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size + 2, 0);
        reader.read_exact(&mut body[start..]).context("failed to read a chunk")?;
        body.truncate(start + size);
    }
}
