//! Reading PDUs from an established association without copying P-DATA.
//!
//! `dicom-ul` decodes every PDU into owned values, copying each P-DATA
//! value's bytes twice on the way. For an SCP whose job is moving hundreds
//! of megabytes to disk, that showed up as the largest user-space cost in
//! profiles. This reader keeps one receive buffer and hands out each
//! presentation data value as a [`Bytes`] slice of it (PS3.8 §9.3.5), so
//! data set bytes are copied once from the socket and once into the file.
//! Every other PDU type is decoded by `dicom-ul` itself.

use bytes::{Buf, Bytes, BytesMut};
use dicom_ul::pdu::Pdu;
use tokio::io::{AsyncRead, AsyncReadExt};

/// PDU type of P-DATA-TF.
const P_DATA_TF: u8 = 0x04;
/// PDU header: type, reserved, 4-byte length.
const PDU_HEADER_BYTES: usize = 6;
/// PDV item header: 4-byte length, context id, message control header.
const PDV_HEADER_BYTES: usize = 6;

/// One presentation data value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdv {
    pub presentation_context_id: u8,
    pub is_command: bool,
    pub is_last: bool,
    pub data: Bytes,
}

/// A received PDU.
#[derive(Debug)]
pub enum Received {
    PData(Vec<Pdv>),
    /// Any other PDU, decoded by `dicom-ul`.
    Other(Pdu),
}

/// Why reading failed.
#[derive(Debug, thiserror::Error)]
pub enum PduError {
    #[error("connection closed by peer")]
    Closed,
    #[error("reading from the connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("PDU of {0} bytes exceeds our maximum of {1}")]
    TooLong(u32, u32),
    #[error("malformed PDU: {0}")]
    Malformed(String),
}

/// Reads PDUs, keeping bytes read ahead for the next call.
pub struct PduReader {
    buffer: BytesMut,
    max_pdu_length: u32,
}

impl PduReader {
    /// `already_read` holds bytes the association handshake read past the
    /// A-ASSOCIATE-RQ, if any.
    pub fn new(max_pdu_length: u32, already_read: &[u8]) -> PduReader {
        let mut buffer = BytesMut::with_capacity(max_pdu_length as usize + PDU_HEADER_BYTES);
        buffer.extend_from_slice(already_read);
        PduReader {
            buffer,
            max_pdu_length,
        }
    }

    /// Reads the next whole PDU. Cancel-safe only in the sense that a
    /// cancelled read leaves the association unusable: callers abort.
    pub async fn next<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> Result<Received, PduError> {
        self.fill(stream, PDU_HEADER_BYTES).await?;
        let pdu_type = self.buffer[0];
        let length = u32::from_be_bytes(self.buffer[2..6].try_into().expect("4 bytes"));
        if length > self.max_pdu_length {
            return Err(PduError::TooLong(length, self.max_pdu_length));
        }
        let total = PDU_HEADER_BYTES + length as usize;
        self.fill(stream, total).await?;
        let pdu = self.buffer.split_to(total).freeze();
        if pdu_type == P_DATA_TF {
            return parse_p_data(pdu.slice(PDU_HEADER_BYTES..)).map(Received::PData);
        }
        match dicom_ul::pdu::read_pdu(&pdu[..], self.max_pdu_length, true) {
            Ok(Some(decoded)) => Ok(Received::Other(decoded)),
            Ok(None) => Err(PduError::Malformed("truncated PDU".into())),
            Err(error) => Err(PduError::Malformed(error.to_string())),
        }
    }

    /// Reads until the buffer holds at least `wanted` bytes.
    async fn fill<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        wanted: usize,
    ) -> Result<(), PduError> {
        if self.buffer.len() < wanted {
            self.buffer.reserve(wanted - self.buffer.len());
        }
        while self.buffer.len() < wanted {
            if stream.read_buf(&mut self.buffer).await? == 0 {
                return Err(PduError::Closed);
            }
        }
        Ok(())
    }
}

/// Splits the body of a P-DATA-TF PDU into its PDVs (PS3.8 §9.3.5.1).
fn parse_p_data(mut body: Bytes) -> Result<Vec<Pdv>, PduError> {
    let mut values = Vec::with_capacity(1);
    while body.has_remaining() {
        if body.len() < PDV_HEADER_BYTES {
            return Err(PduError::Malformed("PDV header cut short".into()));
        }
        let item_length = body.get_u32() as usize;
        if item_length < 2 || item_length > body.len() {
            return Err(PduError::Malformed(format!(
                "PDV item length {item_length} out of range"
            )));
        }
        let presentation_context_id = body.get_u8();
        let control = body.get_u8();
        values.push(Pdv {
            presentation_context_id,
            is_command: control & 0x01 != 0,
            is_last: control & 0x02 != 0,
            data: body.split_to(item_length - 2),
        });
    }
    if values.is_empty() {
        return Err(PduError::Malformed("P-DATA-TF without any PDV".into()));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_ul::pdu::{PDataValue, PDataValueType};

    fn encoded(pdu: &Pdu) -> Vec<u8> {
        let mut bytes = Vec::new();
        dicom_ul::write_pdu(&mut bytes, pdu).unwrap();
        bytes
    }

    fn pdv(id: u8, value_type: PDataValueType, is_last: bool, data: &[u8]) -> PDataValue {
        PDataValue {
            presentation_context_id: id,
            value_type,
            is_last,
            data: data.to_vec(),
        }
    }

    #[tokio::test]
    async fn reads_pdvs_as_dicom_ul_writes_them_whatever_the_chunking() {
        let first = Pdu::PData {
            data: vec![
                pdv(3, PDataValueType::Command, true, b"command"),
                pdv(3, PDataValueType::Data, false, &[7; 1000]),
            ],
        };
        let second = Pdu::PData {
            data: vec![pdv(3, PDataValueType::Data, true, &[9; 10])],
        };
        let mut wire = encoded(&first);
        wire.extend(encoded(&second));
        wire.extend(encoded(&Pdu::ReleaseRQ));
        // Deliver the bytes a few at a time.
        let mut stream = tokio_test_stream(wire, 7);
        let mut reader = PduReader::new(16384, &[]);
        let Received::PData(values) = reader.next(&mut stream).await.unwrap() else {
            panic!()
        };
        assert_eq!(values.len(), 2);
        assert!(values[0].is_command && values[0].is_last);
        assert_eq!(&values[0].data[..], b"command");
        assert!(!values[1].is_command && !values[1].is_last);
        assert_eq!(values[1].data.len(), 1000);
        let Received::PData(values) = reader.next(&mut stream).await.unwrap() else {
            panic!()
        };
        assert!(values[0].is_last && values[0].data[..] == [9; 10]);
        assert!(matches!(
            reader.next(&mut stream).await.unwrap(),
            Received::Other(Pdu::ReleaseRQ)
        ));
        assert!(matches!(
            reader.next(&mut stream).await,
            Err(PduError::Closed)
        ));
    }

    #[tokio::test]
    async fn rejects_oversized_and_malformed_pdus() {
        let big = Pdu::PData {
            data: vec![pdv(1, PDataValueType::Data, true, &[0; 5000])],
        };
        let mut stream = tokio_test_stream(encoded(&big), 4096);
        let mut reader = PduReader::new(4096, &[]);
        assert!(matches!(
            reader.next(&mut stream).await,
            Err(PduError::TooLong(..))
        ));

        // A PDV claiming more bytes than its PDU holds.
        let wire = vec![0x04, 0, 0, 0, 0, 8, 0, 0, 0, 50, 1, 0, 0, 0];
        let mut stream = tokio_test_stream(wire, 100);
        let mut reader = PduReader::new(4096, &[]);
        assert!(matches!(
            reader.next(&mut stream).await,
            Err(PduError::Malformed(_))
        ));
    }

    /// An in-memory stream that yields at most `chunk` bytes per read.
    fn tokio_test_stream(bytes: Vec<u8>, chunk: usize) -> impl AsyncRead + Unpin {
        struct Chunked(std::io::Cursor<Vec<u8>>, usize);
        impl AsyncRead for Chunked {
            fn poll_read(
                mut self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                let this = &mut *self;
                let position = this.0.position() as usize;
                let end = (position + this.1.min(buf.remaining())).min(this.0.get_ref().len());
                buf.put_slice(&this.0.get_ref()[position..end]);
                this.0.set_position(end as u64);
                std::task::Poll::Ready(Ok(()))
            }
        }
        Chunked(std::io::Cursor::new(bytes), chunk)
    }
}
