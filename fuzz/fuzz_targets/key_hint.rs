//! Key-hint sanitising: any caller hint becomes an id the id check accepts,
//! and sanitising is stable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let hint = String::from_utf8_lossy(data);
    let id = csal_core::object_id_from_hint(&hint);
    if let Err(e) = csal_core::check_object_id(&id) {
        panic!("hint {hint:?} gave id {id:?} that the id check refuses: {e}");
    }
    let once = csal_core::sanitize_hint(&hint);
    assert_eq!(csal_core::sanitize_hint(&once), once, "sanitising {hint:?} is not stable");
});
