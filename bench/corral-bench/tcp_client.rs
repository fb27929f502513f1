//! One raw TCP exchange: write the request bytes with one write, then read
//! exactly `response_size` bytes back (dropping them as they come).

use crate::connection::Done;
use crate::rxbuf::RxBuf;
use crate::stats::ErrorKind;
use futures_lite::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// Sends `request` and reads `response_size` bytes.
pub(crate) async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    rx: &mut RxBuf,
    request: &[u8],
    response_size: u64,
) -> Result<Done, ErrorKind> {
    stream
        .write_all(request)
        .await
        .map_err(|_| ErrorKind::Write)?;
    let mut left = response_size;
    loop {
        // Bytes beyond this response (there should be none) stay buffered
        // for the next one.
        let take = left.min(rx.len() as u64);
        rx.consume(take as usize);
        left -= take;
        if left == 0 {
            break;
        }
        match rx.fill(stream).await {
            Ok(0) => return Err(ErrorKind::Closed),
            Ok(_) => {}
            Err(_) => return Err(ErrorKind::Read),
        }
    }
    Ok(Done {
        bytes: response_size,
        keep_alive: true,
        status_ok: true,
    })
}
