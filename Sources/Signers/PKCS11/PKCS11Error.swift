import CPKCS11

/// A PKCS#11 call that did not return `CKR_OK`: which function, and the return value by name. What the backend does
/// next follows from `disposition`, never from the text.
struct PKCS11Error: Error, Sendable, Hashable, CustomStringConvertible {
    let function: String
    let code: CK_RV

    enum Disposition: Sendable, Hashable {
        /// The HSM is busy or had a transient fault (CloudHSM answers `CKR_DEVICE_ERROR` when throttled): back off and
        /// try again.
        case retry
        /// The session or the login is gone (HSM restarted, connection to the cluster lost): open new sessions,
        /// log in again, find the keys again, then try again.
        case reopen
        /// Retrying cannot help: a wrong PIN, a key that may not sign, a mechanism the token lacks.
        case permanent
    }

    var disposition: Disposition {
        switch code {
        case CK_RV(CKR_DEVICE_ERROR), CK_RV(CKR_DEVICE_MEMORY), CK_RV(CKR_FUNCTION_FAILED), CK_RV(CKR_GENERAL_ERROR),
            CK_RV(CKR_HOST_MEMORY), CK_RV(CKR_OPERATION_ACTIVE):
            .retry
        case CK_RV(CKR_SESSION_HANDLE_INVALID), CK_RV(CKR_SESSION_CLOSED), CK_RV(CKR_USER_NOT_LOGGED_IN),
            CK_RV(CKR_DEVICE_REMOVED), CK_RV(CKR_TOKEN_NOT_PRESENT), CK_RV(CKR_OBJECT_HANDLE_INVALID),
            CK_RV(CKR_KEY_HANDLE_INVALID), CK_RV(CKR_CRYPTOKI_NOT_INITIALIZED),
            // Slot ids are not stable (hot-plug, a module that rescans its tokens): find the token again.
            CK_RV(CKR_SLOT_ID_INVALID):
            .reopen
        default:
            .permanent
        }
    }

    var name: String {
        switch code {
        case CK_RV(CKR_ARGUMENTS_BAD): "CKR_ARGUMENTS_BAD"
        case CK_RV(CKR_ATTRIBUTE_TYPE_INVALID): "CKR_ATTRIBUTE_TYPE_INVALID"
        case CK_RV(CKR_BUFFER_TOO_SMALL): "CKR_BUFFER_TOO_SMALL"
        case CK_RV(CKR_CRYPTOKI_NOT_INITIALIZED): "CKR_CRYPTOKI_NOT_INITIALIZED"
        case CK_RV(CKR_DATA_LEN_RANGE): "CKR_DATA_LEN_RANGE"
        case CK_RV(CKR_DEVICE_ERROR): "CKR_DEVICE_ERROR"
        case CK_RV(CKR_DEVICE_MEMORY): "CKR_DEVICE_MEMORY"
        case CK_RV(CKR_DEVICE_REMOVED): "CKR_DEVICE_REMOVED"
        case CK_RV(CKR_FUNCTION_FAILED): "CKR_FUNCTION_FAILED"
        case CK_RV(CKR_GENERAL_ERROR): "CKR_GENERAL_ERROR"
        case CK_RV(CKR_HOST_MEMORY): "CKR_HOST_MEMORY"
        case CK_RV(CKR_KEY_FUNCTION_NOT_PERMITTED): "CKR_KEY_FUNCTION_NOT_PERMITTED"
        case CK_RV(CKR_KEY_HANDLE_INVALID): "CKR_KEY_HANDLE_INVALID"
        case CK_RV(CKR_MECHANISM_INVALID): "CKR_MECHANISM_INVALID"
        case CK_RV(CKR_OBJECT_HANDLE_INVALID): "CKR_OBJECT_HANDLE_INVALID"
        case CK_RV(CKR_OPERATION_ACTIVE): "CKR_OPERATION_ACTIVE"
        case CK_RV(CKR_PIN_INCORRECT): "CKR_PIN_INCORRECT"
        case CK_RV(CKR_PIN_LEN_RANGE): "CKR_PIN_LEN_RANGE"
        case CK_RV(CKR_PIN_LOCKED): "CKR_PIN_LOCKED"
        case CK_RV(CKR_SESSION_CLOSED): "CKR_SESSION_CLOSED"
        case CK_RV(CKR_SESSION_COUNT): "CKR_SESSION_COUNT"
        case CK_RV(CKR_SESSION_HANDLE_INVALID): "CKR_SESSION_HANDLE_INVALID"
        case CK_RV(CKR_SLOT_ID_INVALID): "CKR_SLOT_ID_INVALID"
        case CK_RV(CKR_TOKEN_NOT_PRESENT): "CKR_TOKEN_NOT_PRESENT"
        case CK_RV(CKR_TOKEN_NOT_RECOGNIZED): "CKR_TOKEN_NOT_RECOGNIZED"
        case CK_RV(CKR_USER_NOT_LOGGED_IN): "CKR_USER_NOT_LOGGED_IN"
        case CK_RV(CKR_USER_PIN_NOT_INITIALIZED): "CKR_USER_PIN_NOT_INITIALIZED"
        default: "CKR_0x" + String(code, radix: 16)
        }
    }

    var description: String { "\(function) returned \(name)" }
}
