//! The upstream socket with nginx-style timeouts: `write_timeout` bounds how long one write
//! may stay blocked (nginx `proxy_send_timeout`: between two successive writes), and
//! `read_timeout` bounds how long a read may wait with no progress in either direction
//! (nginx `proxy_read_timeout`: the response head after the request was sent, and the gap
//! between response body chunks). Expiry is an `io::ErrorKind::TimedOut` error, which the
//! proxy maps to 504. The server wraps downstream sockets too, with a write timeout only
//! (nginx `send_timeout`): a client that stops reading cannot pin a connection forever.

use std::{
    future::Future,
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    time::{Instant, Sleep},
};

/// Marker text of the errors produced here.
pub(crate) const READ_TIMEOUT: &str = "upstream read timed out";
pub(crate) const WRITE_TIMEOUT: &str = "upstream write timed out";

pub(crate) struct TimedIo<T = TcpStream> {
    inner: T,
    /// `None`: reads may wait forever (the downstream side, where idle time is bounded
    /// elsewhere).
    read_timeout: Option<Duration>,
    write_timeout: Duration,
    /// Fires at or before `read_deadline`, never after: it is moved only when it fires
    /// early, so a request whose response comes in time costs no timer update.
    read_timer: Pin<Box<Sleep>>,
    read_deadline: Instant,
    read_armed: bool,
    write_timer: Pin<Box<Sleep>>,
    write_armed: bool,
}

impl<T> TimedIo<T> {
    pub(crate) fn new(inner: T, read_timeout: Option<Duration>, write_timeout: Duration) -> Self {
        let now = crate::clock::tokio_now();
        TimedIo {
            inner,
            read_timeout,
            write_timeout,
            read_timer: Box::pin(tokio::time::sleep_until(
                now + read_timeout.unwrap_or(write_timeout),
            )),
            read_deadline: now + read_timeout.unwrap_or(write_timeout),
            read_armed: false,
            write_timer: Box::pin(tokio::time::sleep_until(now + write_timeout)),
            write_armed: false,
        }
    }

    /// The socket.
    pub(crate) fn get_ref(&self) -> &T {
        &self.inner
    }

    fn write_progress(&mut self) {
        self.write_armed = false;
        // Sending is progress too: the read timer restarts from the next pending read.
        self.read_armed = false;
    }

    fn poll_write_timer(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if !self.write_armed {
            let deadline = crate::clock::tokio_now() + self.write_timeout;
            self.write_timer.as_mut().reset(deadline);
            self.write_armed = true;
        }
        match self.write_timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.write_armed = false;
                Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, WRITE_TIMEOUT))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TimedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.read_armed = false;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let Some(read_timeout) = this.read_timeout else {
                    return Poll::Pending;
                };
                if !this.read_armed {
                    this.read_deadline = crate::clock::tokio_now() + read_timeout;
                    this.read_armed = true;
                    if this.read_timer.deadline() > this.read_deadline {
                        this.read_timer.as_mut().reset(this.read_deadline);
                    }
                }
                loop {
                    match this.read_timer.as_mut().poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(()) if crate::clock::tokio_now() >= this.read_deadline => {
                            this.read_armed = false;
                            return Poll::Ready(Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                READ_TIMEOUT,
                            )));
                        }
                        // Fired for an earlier deadline: wait for the current one.
                        Poll::Ready(()) => this.read_timer.as_mut().reset(this.read_deadline),
                    }
                }
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TimedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                this.write_progress();
                Poll::Ready(r)
            }
            Poll::Pending => this.poll_write_timer(cx).map(Err),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                this.write_progress();
                Poll::Ready(r)
            }
            Poll::Pending => this.poll_write_timer(cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
