//! Query (the operations and object types this server supports, and who it is), and the
//! service operations of KMIP 2.x: Log and, where enabled for interoperability testing,
//! Interop.

use kmip::enums::{ObjectType, Operation, QueryFunction};
use kmip::ops::query;
use kmip::{Tag, Ttlv, Value};

use super::{OpCtx, Outcome};
use crate::kmip_server::dispatch::SUPPORTED_OPERATIONS;
use crate::kmip_server::error::OpError;

pub(crate) fn handle(
    functions: &[QueryFunction],
    version: kmip::ProtocolVersion,
    interop: bool,
) -> Result<Outcome, OpError> {
    let mut r = query::Response::default();
    if functions.contains(&QueryFunction::QUERY_OPERATIONS) {
        // Only operations the client's version defines; Interop only where it is enabled.
        r.operations = SUPPORTED_OPERATIONS
            .iter()
            .copied()
            .filter(|op| op.introduced_in() <= version)
            .filter(|op| interop || *op != Operation::INTEROP)
            .collect();
    }
    if functions.contains(&QueryFunction::QUERY_OBJECTS) {
        r.object_types = vec![
            ObjectType::SYMMETRIC_KEY,
            ObjectType::PUBLIC_KEY,
            ObjectType::PRIVATE_KEY,
            ObjectType::SECRET_DATA,
            ObjectType::OPAQUE_OBJECT,
        ];
    }
    if functions.contains(&QueryFunction::QUERY_SERVER_INFORMATION) {
        r.vendor_identification = Some("Strongroom".to_owned());
        r.server_information = vec![
            Ttlv::new(Tag::SERVER_NAME, Value::TextString("Strongroom".to_owned())),
            Ttlv::new(Tag::SERVER_VERSION, Value::TextString(env!("CARGO_PKG_VERSION").to_owned())),
        ];
    }
    if functions.contains(&QueryFunction::QUERY_PROFILES) {
        r.profiles = profiles(version);
    }
    if functions.contains(&QueryFunction::QUERY_CAPABILITIES) {
        let flag = |tag, v| Ttlv::new(tag, Value::Boolean(v));
        r.capability_information = vec![
            flag(Tag::STREAMING_CAPABILITY, false),
            flag(Tag::ASYNCHRONOUS_CAPABILITY, false),
            flag(Tag::ATTESTATION_CAPABILITY, false),
            flag(Tag::BATCH_UNDO_CAPABILITY, true),
            flag(Tag::BATCH_CONTINUE_CAPABILITY, true),
        ];
    }
    Ok(Outcome::new(r.to_ttlv(), None))
}

/// The server profiles (KMIP Profiles 1.4 and 2.1) whose mandatory test cases this server
/// passes (`tests/oasis_profiles.rs`), named as the client's version names them: the 2.1
/// names with Profile Version 2.1 for 2.x, the versioned 1.x names for 1.3 and 1.4, none
/// before 1.3 (which has no Query Profiles). Not claimed: Basic Cryptographic (ChaCha20
/// and two cases no server passes), Tape Library (one such case), Complete Server, and
/// PKCS#11 (only C_Initialize, C_GetInfo and C_Finalize are answered).
fn profiles(version: kmip::ProtocolVersion) -> Vec<query::ProfileInformation> {
    use kmip::enums::ProfileName as P;
    use kmip::ProtocolVersion as V;
    let (names, profile_version): (&[P], _) = if version.is_v2() {
        let names = &[
            P::BASELINE_SERVER,
            P::SYMMETRIC_KEY_LIFECYCLE_SERVER,
            P::ASYMMETRIC_KEY_LIFECYCLE_SERVER,
            P::ADVANCED_CRYPTOGRAPHIC_SERVER,
            P::RNG_CRYPTOGRAPHIC_SERVER,
            P::SYMMETRIC_KEY_FOUNDRY_SERVER,
            P::OPAQUE_MANAGED_OBJECT_STORE_SERVER,
            P::STORAGE_ARRAY_WITH_SELF_ENCRYPTING_DRIVE_SERVER,
            P::HTTPS_SERVER,
            P::JSON_SERVER,
            P::XML_SERVER,
            P::AES_XTS_SERVER,
            P::QUANTUM_SAFE_SERVER,
        ];
        (names, Some((2, 1)))
    } else if version >= V::V1_4 {
        let names = &[
            P::BASELINE_SERVER_BASIC_KMIP_V1_4,
            P::BASELINE_SERVER_TLS_V1_2_KMIP_V1_4,
            P::SYMMETRIC_KEY_LIFECYCLE_SERVER_KMIP_V1_4,
            P::ASYMMETRIC_KEY_LIFECYCLE_SERVER_KMIP_V1_4,
            P::ADVANCED_CRYPTOGRAPHIC_SERVER_KMIP_V1_4,
            P::RNG_CRYPTOGRAPHIC_SERVER_KMIP_V1_4,
            P::SYMMETRIC_KEY_FOUNDRY_SERVER_KMIP_V1_4,
            P::OPAQUE_MANAGED_OBJECT_STORE_SERVER_KMIP_V1_4,
            P::SUITE_B_MINLOS_128_SERVER_KMIP_V1_4,
            P::SUITE_B_MINLOS_192_SERVER_KMIP_V1_4,
            P::STORAGE_ARRAY_WITH_SELF_ENCRYPTING_DRIVE_SERVER_KMIP_V1_4,
            P::HTTPS_SERVER_KMIP_V1_4,
            P::JSON_SERVER_KMIP_V1_4,
            P::XML_SERVER_KMIP_V1_4,
        ];
        (names, None)
    } else if version >= V::V1_3 {
        let names = &[
            P::BASELINE_SERVER_BASIC_KMIP_V1_3,
            P::BASELINE_SERVER_TLS_V1_2_KMIP_V1_3,
            P::SYMMETRIC_KEY_LIFECYCLE_SERVER_KMIP_V1_3,
            P::ASYMMETRIC_KEY_LIFECYCLE_SERVER_KMIP_V1_3,
            P::ADVANCED_CRYPTOGRAPHIC_SERVER_KMIP_V1_3,
            P::RNG_CRYPTOGRAPHIC_SERVER_KMIP_V1_3,
            P::SYMMETRIC_KEY_FOUNDRY_SERVER_KMIP_V1_3,
            P::OPAQUE_MANAGED_OBJECT_STORE_SERVER_KMIP_V1_3,
            P::SUITE_B_MINLOS_128_SERVER_KMIP_V1_3,
            P::SUITE_B_MINLOS_192_SERVER_KMIP_V1_3,
            P::STORAGE_ARRAY_WITH_SELF_ENCRYPTING_DRIVE_SERVER_KMIP_V1_3,
            P::HTTPS_SERVER_KMIP_V1_3,
            P::JSON_SERVER_KMIP_V1_3,
            P::XML_SERVER_KMIP_V1_3,
        ];
        (names, None)
    } else {
        (&[], None)
    };
    names.iter().map(|&name| query::ProfileInformation { name, version: profile_version }).collect()
}

/// Longest Log Message accepted, in characters.
const MAX_LOG_MESSAGE: usize = 4096;

/// Log (KMIP 2.1 §6.1.29): the client's message goes to the server log, escaped, with the
/// client's identity (the audit trail records the operation too).
pub(crate) fn log(cx: &OpCtx<'_>, req: kmip::ops::log::Request) -> Result<Outcome, OpError> {
    if req.message.chars().count() > MAX_LOG_MESSAGE {
        return Err(OpError::Invalid("a Log Message is at most 4096 characters"));
    }
    tracing::info!(client = %cx.principal.as_str(), message = ?req.message, "KMIP client log message");
    Ok(Outcome::new(Vec::new(), None))
}

/// Interop (KMIP 2.1 §6.1.26), only with `[kmip] interop = true`: marks where a test case
/// begins and ends in the log. Reset deletes nothing: test cases clean up after themselves.
pub(crate) fn interop(
    cx: &OpCtx<'_>,
    req: kmip::ops::interop::Request,
) -> Result<Outcome, OpError> {
    use kmip::enums::InteropFunction;
    if ![InteropFunction::BEGIN, InteropFunction::END, InteropFunction::RESET]
        .contains(&req.function)
    {
        return Err(OpError::Invalid("Interop Function is Begin, End or Reset"));
    }
    tracing::info!(
        client = %cx.principal.as_str(),
        function = ?req.function,
        test_case = ?req.identifier,
        "KMIP interop"
    );
    Ok(Outcome::new(Vec::new(), None))
}
