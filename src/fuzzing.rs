//! Entry points shared by the fuzz targets (`fuzz/fuzz_targets/`, built
//! with `cargo fuzz`) and the corpus regression test
//! (`tests/fuzz_corpus.rs`), so a crash input found by the fuzzer replays
//! through exactly the code it crashed.
//!
//! Each entry point takes arbitrary bytes and runs them through what the
//! node does with such bytes from the outside world, returning `Ok` when
//! the input was accepted and `Err` with the reason when it was refused.
//! Either is fine; what must never happen is a panic, a hang or an
//! allocation out of proportion to the input. A few properties that must
//! hold for every accepted input are asserted, so the fuzzer reports their
//! violation as a crash.
//!
//! - [`pdu`]: the bytes a peer sends on an association.
//! - [`dimse_command`]: a reassembled DIMSE command set (SCP requests and
//!   the C-STORE responses the SCU reads).
//! - [`dataset`]: a received object, checked as the store checks it, then
//!   read as the worker reads it (gate, identity, greyscale attributes).
//! - [`pixel_pipeline`]: a received object decoded and preprocessed into a
//!   64 x 64 model input.
//!
//! Objects ([`dataset`], [`pixel_pipeline`]) come in one of two forms: a
//! Part-10 file (128-byte preamble, `DICM`, file meta information), as
//! `chestnode analyze` reads from disk, or one byte choosing a transfer
//! syntax from those the SCP accepts followed by a data set as received in
//! P-DATA, which is stored behind a file meta header of our own, as the
//! SCP stores it.

use std::future::Future;
use std::io::Cursor;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use dicom_dictionary_std::uids;
use dicom_object::{DefaultDicomObject, InMemDicomObject};
use dicom_ul::pdu::Pdu;

use crate::config::NetworkConfig;
use crate::dimse::{Command, PduError, PduReader, Received, Response, status};
use crate::imaging::{self, Normalisation, Photometric, SampleLayout};
use crate::queue::Priority;
use crate::scp::contexts::TRANSFER_SYNTAXES;
use crate::store::{self, IncomingMeta, ValidUid};

/// Side of the model input [`pixel_pipeline`] builds.
pub const MODEL_INPUT_SIZE: u32 = 64;

/// The most bytes of command set the SCP collects (as in `scp::session`).
const MAX_COMMAND_SET_BYTES: usize = 64 * 1024;

/// A fuzzing entry point: `Ok` if the input was accepted, `Err` with the
/// reason if it was refused.
pub type EntryPoint = fn(&[u8]) -> Result<(), String>;

/// The entry points by name, as the fuzz targets and the corpus
/// directories (`tests/fuzz_corpus/<name>/`) are named.
pub const TARGETS: &[(&str, EntryPoint)] = &[
    ("pdu", pdu),
    ("dimse_command", dimse_command),
    ("dataset", dataset),
    ("pixel_pipeline", pixel_pipeline),
];

/// Reads `data` as the byte stream of an established association: PDUs
/// through [`PduReader`] until the stream ends or a PDU is refused, with
/// command fragments reassembled and decoded as the SCP does. The whole
/// input is also decoded by `dicom-ul`'s `read_pdu`, strictly (as the
/// A-ASSOCIATE-RQ is read on accept) and leniently (as it is read to
/// reject a peer while busy).
pub fn pdu(data: &[u8]) -> Result<(), String> {
    let max_pdu_length = NetworkConfig::default().max_pdu_length;
    for strict in [true, false] {
        // Either outcome is fine here; the reader below decides `Ok`.
        let _ = dicom_ul::pdu::read_pdu(data, max_pdu_length, strict);
    }
    let mut stream = data;
    let mut reader = PduReader::new(max_pdu_length, &[]);
    let mut command = Vec::new();
    loop {
        let received = match block_on(reader.next(&mut stream)) {
            Ok(received) => received,
            Err(PduError::Closed) => return Ok(()),
            Err(error) => return Err(error.to_string()),
        };
        match received {
            Received::PData(values) => {
                for value in values.iter().filter(|v| v.is_command) {
                    command.extend_from_slice(&value.data);
                    if command.len() > MAX_COMMAND_SET_BYTES {
                        return Err("command set too large".into());
                    }
                    if value.is_last {
                        Command::decode(&command).map_err(|e| e.to_string())?;
                        command.clear();
                    }
                }
            }
            Received::Other(Pdu::ReleaseRQ | Pdu::AbortRQ { .. }) => return Ok(()),
            Received::Other(_) => {}
        }
    }
}

/// Decodes `data` as a request command set and answers it as the SCP
/// would, and decodes it as a response, as the C-STORE SCU does. Asserts
/// that what we encode from a decoded request decodes again.
pub fn dimse_command(data: &[u8]) -> Result<(), String> {
    let response = Response::decode(data);
    let request = Command::decode(data).map_err(|e| e.to_string());
    if let Ok(request) = &request {
        let answer = Response::to(request, status::CANNOT_UNDERSTAND)
            .with_error_comment(format!("message {} refused", request.message_id));
        let decoded = Response::decode(&answer.encode());
        assert!(decoded.is_ok(), "our response does not decode: {decoded:?}");
        let again = Command::decode(&request.encode());
        assert!(again.is_ok(), "our request does not decode: {again:?}");
    }
    match (request, response) {
        (Ok(_), _) | (_, Ok(_)) => Ok(()),
        (Err(error), Err(_)) => Err(error),
    }
}

/// Checks `data` as the store checks a received object, then reads it as
/// the worker does: the whole object, the gate, the greyscale attributes
/// and the identity copied into results.
pub fn dataset(data: &[u8]) -> Result<(), String> {
    let object = match Object::from_input(data)? {
        Object::Received {
            file,
            data_set_start,
            transfer_syntax,
        } => {
            store::identify_received(Cursor::new(&file), data_set_start, transfer_syntax)
                .map_err(|e| e.to_string())?;
            open(&file)?
        }
        Object::File(file) => open(file)?,
    };
    let _ = imaging::gate(&object);
    let layout = SampleLayout {
        bits_allocated: 16,
        bits_stored: 12,
        high_bit: 11,
        signed: false,
    };
    imaging::greyscale_attributes::greyscale_pipeline(&object, layout, Photometric::Monochrome2)
        .map_err(|e| e.to_string())?;
    let mut results = InMemDicomObject::new_empty();
    crate::report::identity::copy_identity(&object, &mut results).map_err(|e| e.to_string())?;
    Ok(())
}

/// Decodes the first frame of `data` and makes the 64 x 64 model input
/// from it, as the worker does before inference. Asserts that the input
/// holds only finite values in the model's range.
pub fn pixel_pipeline(data: &[u8]) -> Result<(), String> {
    let object = match Object::from_input(data)? {
        Object::Received { file, .. } => open(&file)?,
        Object::File(file) => open(file)?,
    };
    let radiograph = imaging::load_radiograph(&object).map_err(|e| e.to_string())?;
    let (input, _) = imaging::model_input(&radiograph, MODEL_INPUT_SIZE, Normalisation::UNIT)
        .map_err(|e| e.to_string())?;
    assert_eq!(input.len(), (MODEL_INPUT_SIZE * MODEL_INPUT_SIZE) as usize);
    assert!(
        input.iter().all(|v| (0.0..=1.0).contains(v)),
        "model input outside [0, 1]"
    );
    Ok(())
}

/// An object as fuzz input.
enum Object<'a> {
    /// A Part-10 file as given.
    File(&'a [u8]),
    /// A data set as received, behind the file meta header the SCP writes.
    Received {
        file: Vec<u8>,
        data_set_start: u64,
        transfer_syntax: &'static str,
    },
}

impl Object<'_> {
    fn from_input(data: &[u8]) -> Result<Object<'_>, String> {
        if data.get(128..132) == Some(b"DICM") {
            return Ok(Object::File(data));
        }
        let (&choice, data_set) = data.split_first().ok_or("empty input")?;
        let transfer_syntax = TRANSFER_SYNTAXES[usize::from(choice) % TRANSFER_SYNTAXES.len()];
        let meta = IncomingMeta {
            sop_class_uid: uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION.to_owned(),
            sop_instance_uid: ValidUid::parse("1.2.3.4").expect("a valid UID"),
            transfer_syntax_uid: transfer_syntax.to_owned(),
            calling_ae_title: "FUZZER".to_owned(),
            priority: Priority::Medium,
        };
        let mut file = store::part10_header(&meta).map_err(|e| e.to_string())?;
        let data_set_start = file.len() as u64;
        file.extend_from_slice(data_set);
        Ok(Object::Received {
            file,
            data_set_start,
            transfer_syntax,
        })
    }
}

/// Reads a whole Part-10 file as the worker does.
fn open(file: &[u8]) -> Result<DefaultDicomObject, String> {
    store::open_checked(Cursor::new(file)).map_err(|e| e.to_string())
}

/// Runs a future over in-memory input to completion. The reader only waits
/// on its stream, and a byte slice never makes it wait.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}
