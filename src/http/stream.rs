//! A response body made while it is sent: a producer thread writes chunks
//! into a bounded channel, the transport reads them out (SPEC 7.3: a CSV
//! of 100 000 records streams, and memory stays flat).

use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Chunks in flight at most between the producer and the connection.
const CHUNKS: usize = 8;
const CHUNK: usize = 64 * 1024;

/// Runs `produce` on a thread of its own, writing into the returned reader.
/// An error ends the body with an error of the reader (the transport then
/// breaks the response off, so the client sees it incomplete rather than a
/// short answer that looks whole; the log says why); a client that goes
/// away ends the producer at its next write.
pub fn body(
    produce: impl FnOnce(&mut dyn Write) -> crate::error::Result<()> + Send + 'static,
) -> impl Read + Send {
    let (tx, rx) = sync_channel(CHUNKS);
    std::thread::spawn(move || {
        let mut w = ChunkWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        };
        let r = produce(&mut w).and_then(|()| Ok(w.flush()?));
        if let Err(e) = r {
            if !matches!(&e, crate::error::Error::Io(io) if io.kind() == io::ErrorKind::BrokenPipe)
            {
                eprintln!("sumatra-server: a streamed answer ended early: {e}");
                // What was made goes out, then the error breaks the body off.
                let _ = w.flush();
                let _ = w.tx.send(Err(e.to_string()));
            }
        }
    });
    ChannelReader {
        rx,
        chunk: Vec::new(),
        at: 0,
    }
}

/// A chunk, or why the answer stopped.
type Chunk = Result<Vec<u8>, String>;

struct ChunkWriter {
    tx: SyncSender<Chunk>,
    buf: Vec<u8>,
}

impl Write for ChunkWriter {
    /// Sends full chunks of at most [`CHUNK`] bytes however long `data`
    /// is (a row with a long output is many chunks, so the chunks in
    /// flight stay a bounded number of bytes).
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut rest = data;
        while !rest.is_empty() {
            let room = CHUNK - self.buf.len();
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.buf.extend_from_slice(now);
            rest = later;
            if self.buf.len() >= CHUNK {
                self.flush()?;
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .send(Ok(full))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        // The client took a chunk: the stream's deadline starts again.
        crate::deadline::progressed();
        Ok(())
    }
}

struct ChannelReader {
    rx: Receiver<Chunk>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(next)) => {
                    self.chunk = next;
                    self.at = 0;
                }
                Ok(Err(why)) => return Err(io::Error::other(why)),
                Err(_) => return Ok(0), // the producer is done
            }
        }
        let n = out.len().min(self.chunk.len() - self.at);
        out[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    /// Regression (SPEC 7.6): a row with 1 MiB of output went out as one
    /// 1 MiB chunk, and eight of them waited in each stream's channel.
    #[test]
    fn chunks_stay_small_whatever_the_size_of_one_write() {
        let (tx, rx) = std::sync::mpsc::sync_channel(64);
        let mut w = super::ChunkWriter {
            tx,
            buf: Vec::with_capacity(super::CHUNK),
        };
        w.write_all(&vec![b'x'; 3 * super::CHUNK + 5]).unwrap();
        w.flush().unwrap();
        drop(w);
        let sizes: Vec<usize> = rx.iter().map(|c| c.unwrap().len()).collect();
        assert_eq!(sizes, [super::CHUNK, super::CHUNK, super::CHUNK, 5]);
    }

    /// Regression (SPEC 7.6): a stream stopped by its deadline ended like
    /// a whole answer (a 200 with a short CSV or cut JSON); the reader now
    /// ends with the error, which the transport turns into a broken body.
    #[test]
    fn a_stream_that_fails_ends_with_an_error_not_an_end() {
        let mut r = super::body(|w| {
            w.write_all(b"label\r\n")?;
            Err(crate::error::Error::bad("stopped"))
        });
        let mut got = Vec::new();
        let e = std::io::Read::read_to_end(&mut r, &mut got).unwrap_err();
        assert_eq!(got, b"label\r\n");
        assert_eq!(e.to_string(), "stopped");
    }

    #[test]
    fn a_streamed_body_arrives_whole_and_in_order() {
        let mut r = super::body(|w| {
            for i in 0..100_000 {
                writeln!(w, "line {i}")?;
            }
            Ok(())
        });
        let mut all = String::new();
        std::io::Read::read_to_string(&mut r, &mut all).unwrap();
        assert_eq!(all.lines().count(), 100_000);
        assert_eq!(all.lines().last(), Some("line 99999"));
    }
}
