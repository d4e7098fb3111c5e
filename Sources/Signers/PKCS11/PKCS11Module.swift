import CPKCS11
import Ethereum
import Signers
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A PKCS#11 module loaded with `dlopen` (its path is configuration: CloudHSM's `libcloudhsm_pkcs11.so`, SoftHSM's
/// `libsofthsm2.so`, another vendor's), initialised once per process for multi-threaded use.
///
/// Every method here is a blocking C call: callers run them on the backend's thread pool, never on an event loop or
/// the cooperative pool.
final class PKCS11Module: @unchecked Sendable {
    // @unchecked: the function list is immutable after loading, and the module was initialised with
    // `CKF_OS_LOCKING_OK`, which makes every call safe from any thread (PKCS#11 2.40 §5.4).
    private let functions: UnsafeMutablePointer<CK_FUNCTION_LIST>
    let path: String

    /// One instance per module path: a second `C_Initialize` in the same process is an error, and two backends
    /// may use two tokens of one module. Modules stay loaded for the life of the process.
    private static let loaded = Mutex<[String: PKCS11Module]>([:])

    static func load(path: String) throws(SignerError) -> PKCS11Module {
        let result: Result<PKCS11Module, SignerError> = loaded.withLock { loaded in
            if let module = loaded[path] { return .success(module) }
            do throws(SignerError) {
                let module = try PKCS11Module(path: path)
                loaded[path] = module
                return .success(module)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private init(path: String) throws(SignerError) {
        self.path = path
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "unknown reason"
            throw .configuration("cannot load PKCS#11 module \(path): \(reason)")
        }
        typealias GetFunctionList = @convention(c) (UnsafeMutablePointer<UnsafeMutablePointer<CK_FUNCTION_LIST>?>?)
            -> CK_RV
        guard let symbol = dlsym(handle, "C_GetFunctionList") else {
            throw .configuration("\(path) is not a PKCS#11 module (no C_GetFunctionList)")
        }
        var list: UnsafeMutablePointer<CK_FUNCTION_LIST>?
        let getFunctionList = unsafeBitCast(symbol, to: GetFunctionList.self)
        guard getFunctionList(&list) == CKR_OK, let list else {
            throw .configuration("\(path): C_GetFunctionList failed")
        }
        functions = list
        do throws(PKCS11Error) {
            try initialize()
        } catch {
            throw .configuration("\(path): \(error)")
        }
    }

    /// `C_Initialize` for multi-threaded use; again after the module was finalised under us (a vendor's client
    /// daemon restarted, another part of the process called `C_Finalize`). Already initialised is fine.
    func initialize() throws(PKCS11Error) {
        var arguments = CK_C_INITIALIZE_ARGS()
        arguments.flags = CK_FLAGS(CKF_OS_LOCKING_OK)
        let code = withUnsafeMutablePointer(to: &arguments) { functions.pointee.C_Initialize!($0) }
        guard code == CKR_OK || code == CKR_CRYPTOKI_ALREADY_INITIALIZED else {
            throw PKCS11Error(function: "C_Initialize", code: code)
        }
    }

    private func check(_ function: String, _ code: CK_RV) throws(PKCS11Error) {
        guard code == CKR_OK else { throw PKCS11Error(function: function, code: code) }
    }

    /// The slot whose token has this label (labels are padded with spaces to 32 bytes). Slot ids are not stable:
    /// SoftHSM reassigns them when a token is initialised, so configuration names the token.
    func slot(tokenLabel: String) throws(PKCS11Error) -> CK_SLOT_ID? {
        var count: CK_ULONG = 0
        try check("C_GetSlotList", functions.pointee.C_GetSlotList!(CK_BBOOL(CK_TRUE), nil, &count))
        var slots = [CK_SLOT_ID](repeating: 0, count: Int(count))
        try check("C_GetSlotList", functions.pointee.C_GetSlotList!(CK_BBOOL(CK_TRUE), &slots, &count))
        for slot in slots.prefix(Int(count)) {
            var info = CK_TOKEN_INFO()
            guard functions.pointee.C_GetTokenInfo!(slot, &info) == CKR_OK else { continue }
            let label = withUnsafeBytes(of: info.label) { String(decoding: $0, as: UTF8.self) }
            if label.trimmingSpaces == tokenLabel { return slot }
        }
        return nil
    }

    /// Token labels present, for an error message that helps.
    func tokenLabels() -> [String] {
        var count: CK_ULONG = 0
        guard functions.pointee.C_GetSlotList!(CK_BBOOL(CK_TRUE), nil, &count) == CKR_OK else { return [] }
        var slots = [CK_SLOT_ID](repeating: 0, count: Int(count))
        guard functions.pointee.C_GetSlotList!(CK_BBOOL(CK_TRUE), &slots, &count) == CKR_OK else { return [] }
        return slots.prefix(Int(count)).compactMap { slot in
            var info = CK_TOKEN_INFO()
            guard functions.pointee.C_GetTokenInfo!(slot, &info) == CKR_OK else { return nil }
            return withUnsafeBytes(of: info.label) { String(decoding: $0, as: UTF8.self) }.trimmingSpaces
        }
    }

    /// A read-write session (CloudHSM has no read-only ones).
    func openSession(slot: CK_SLOT_ID) throws(PKCS11Error) -> CK_SESSION_HANDLE {
        var session: CK_SESSION_HANDLE = 0
        let flags = CK_FLAGS(CKF_SERIAL_SESSION | CKF_RW_SESSION)
        try check("C_OpenSession", functions.pointee.C_OpenSession!(slot, flags, nil, nil, &session))
        return session
    }

    func closeSession(_ session: CK_SESSION_HANDLE) {
        _ = functions.pointee.C_CloseSession!(session)
    }

    /// Logs the application in (a login covers every session of the token). Already logged in is fine.
    func login(_ session: CK_SESSION_HANDLE, pin: [UInt8]) throws(PKCS11Error) {
        var pin = pin
        let code = pin.withUnsafeMutableBufferPointer { pin in
            functions.pointee.C_Login!(session, CK_USER_TYPE(CKU_USER), pin.baseAddress, CK_ULONG(pin.count))
        }
        for index in pin.indices { pin[index] = 0 }
        guard code == CKR_OK || code == CKR_USER_ALREADY_LOGGED_IN else {
            throw PKCS11Error(function: "C_Login", code: code)
        }
    }

    /// Every object matching the template.
    func findObjects(_ session: CK_SESSION_HANDLE, _ template: [PKCS11Attribute]) throws(PKCS11Error)
        -> [CK_OBJECT_HANDLE]
    {
        let initialised = PKCS11Attribute.withTemplate(template) { attributes, count in
            functions.pointee.C_FindObjectsInit!(session, attributes, count)
        }
        try check("C_FindObjectsInit", initialised)
        defer { _ = functions.pointee.C_FindObjectsFinal!(session) }
        var objects: [CK_OBJECT_HANDLE] = []
        var batch = [CK_OBJECT_HANDLE](repeating: 0, count: 64)
        while true {
            var found: CK_ULONG = 0
            try check("C_FindObjects", functions.pointee.C_FindObjects!(session, &batch, CK_ULONG(batch.count), &found))
            guard found > 0 else { return objects }
            objects += batch.prefix(Int(found))
        }
    }

    /// One attribute's value; `nil` when the object does not have it (or may not reveal it).
    func attribute(_ session: CK_SESSION_HANDLE, _ object: CK_OBJECT_HANDLE, _ type: CK_ATTRIBUTE_TYPE)
        throws(PKCS11Error) -> [UInt8]?
    {
        var query = CK_ATTRIBUTE(type: type, pValue: nil, ulValueLen: 0)
        let sized = functions.pointee.C_GetAttributeValue!(session, object, &query, 1)
        if sized == CKR_ATTRIBUTE_TYPE_INVALID || sized == CKR_ATTRIBUTE_SENSITIVE { return nil }
        try check("C_GetAttributeValue", sized)
        guard query.ulValueLen != CK_ULONG.max else { return nil }  // CK_UNAVAILABLE_INFORMATION
        var value = [UInt8](repeating: 0, count: Int(query.ulValueLen))
        let read = value.withUnsafeMutableBytes { buffer in
            var attribute = CK_ATTRIBUTE(type: type, pValue: buffer.baseAddress, ulValueLen: CK_ULONG(buffer.count))
            let code = functions.pointee.C_GetAttributeValue!(session, object, &attribute, 1)
            return (code, attribute.ulValueLen)
        }
        try check("C_GetAttributeValue", read.0)
        return Array(value.prefix(Int(read.1)))
    }

    /// `CKM_EC_KEY_PAIR_GEN` on the token: returns (public key, private key) handles.
    func generateKeyPair(
        _ session: CK_SESSION_HANDLE, publicTemplate: [PKCS11Attribute], privateTemplate: [PKCS11Attribute]
    ) throws(PKCS11Error) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
        var mechanism = CK_MECHANISM(
            mechanism: CK_MECHANISM_TYPE(CKM_EC_KEY_PAIR_GEN), pParameter: nil, ulParameterLen: 0)
        var publicKey: CK_OBJECT_HANDLE = 0
        var privateKey: CK_OBJECT_HANDLE = 0
        let code = PKCS11Attribute.withTemplate(publicTemplate) { publicAttributes, publicCount in
            PKCS11Attribute.withTemplate(privateTemplate) { privateAttributes, privateCount in
                functions.pointee.C_GenerateKeyPair!(
                    session, &mechanism, publicAttributes, publicCount, privateAttributes, privateCount, &publicKey,
                    &privateKey)
            }
        }
        try check("C_GenerateKeyPair", code)
        return (publicKey, privateKey)
    }

    func destroyObject(_ session: CK_SESSION_HANDLE, _ object: CK_OBJECT_HANDLE) throws(PKCS11Error) {
        try check("C_DestroyObject", functions.pointee.C_DestroyObject!(session, object))
    }

    /// Single-part `CKM_ECDSA` over exactly 32 bytes (SoftHSM would accept 31 silently; `Bytes32` makes that
    /// impossible). Returns the token's raw r ‖ s.
    func signECDSA(_ session: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE, digest: Bytes32) throws(PKCS11Error)
        -> [UInt8]
    {
        var mechanism = CK_MECHANISM(mechanism: CK_MECHANISM_TYPE(CKM_ECDSA), pParameter: nil, ulParameterLen: 0)
        try check("C_SignInit", functions.pointee.C_SignInit!(session, &mechanism, key))
        var input = digest.bytes
        var signature = [UInt8](repeating: 0, count: 128)
        var length = CK_ULONG(signature.count)
        let code = functions.pointee.C_Sign!(session, &input, CK_ULONG(input.count), &signature, &length)
        try check("C_Sign", code)
        return Array(signature.prefix(Int(length)))
    }
}

/// One entry of a search template, owning its value's bytes.
struct PKCS11Attribute: Sendable {
    let type: CK_ATTRIBUTE_TYPE
    let value: [UInt8]

    static func ulong(_ type: CK_ATTRIBUTE_TYPE, _ value: CK_ULONG) -> PKCS11Attribute {
        PKCS11Attribute(type: type, value: withUnsafeBytes(of: value) { Array($0) })
    }

    static func bytes(_ type: CK_ATTRIBUTE_TYPE, _ value: [UInt8]) -> PKCS11Attribute {
        PKCS11Attribute(type: type, value: value)
    }

    static func bool(_ type: CK_ATTRIBUTE_TYPE, _ value: Bool) -> PKCS11Attribute {
        PKCS11Attribute(type: type, value: [value ? UInt8(CK_TRUE) : UInt8(CK_FALSE)])
    }

    /// The template as C attributes, valid only inside `body`.
    static func withTemplate<R>(
        _ template: [PKCS11Attribute], _ body: (UnsafeMutablePointer<CK_ATTRIBUTE>, CK_ULONG) -> R
    ) -> R {
        let storage = template.map { attribute in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(attribute.value.count, 1), alignment: 8)
            buffer.copyBytes(from: attribute.value)
            return buffer
        }
        defer { storage.forEach { $0.deallocate() } }
        var attributes = zip(template, storage).map { attribute, buffer in
            CK_ATTRIBUTE(type: attribute.type, pValue: buffer.baseAddress, ulValueLen: CK_ULONG(attribute.value.count))
        }
        return attributes.withUnsafeMutableBufferPointer { body($0.baseAddress!, CK_ULONG($0.count)) }
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        var text = Substring(self)
        while text.last == " " || text.last == "\0" { text.removeLast() }
        return String(text)
    }
}
