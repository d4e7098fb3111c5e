import Ethereum
import JSONRPC
import Signers
import Submission
import Testing

/// A backend that signs only legacy transactions (Vault's ethsign plugin) gets legacy transactions from the filler:
/// chosen when the caller left the type open, refused when the caller named EIP-1559 fees, unless the backend allows
/// them as legacy with gasPrice = maxFeePerGas.
@Suite struct LegacyOnlySignerFillingTests {
    static let from = PrivateKey.random().address
    static let to = PrivateKey.random().address
    static let strict = TransactionSupport.legacyOnly(dynamicFeeAsLegacy: false)
    static let converting = TransactionSupport.legacyOnly(dynamicFeeAsLegacy: true)

    static func request(_ configure: (inout TransactionRequest) -> Void = { _ in }) -> TransactionRequest {
        var request = TransactionRequest(from: from, to: to, value: 1)
        configure(&request)
        return request
    }

    @Test func anyBackendThatSignsEveryTypeGetsTheRequestAsItIs() throws {
        let request = Self.request { $0.maxFeePerGas = 9 }
        #expect(try TransactionFiller.adapt(request, to: .all) == request)
    }

    @Test func anOpenTypeBecomesLegacy() throws {
        for support in [Self.strict, Self.converting] {
            let adapted = try TransactionFiller.adapt(Self.request(), to: support)
            #expect(adapted.type == .legacy)
            #expect(adapted.gasPrice == nil, "the filler prices it")
            let priced = try TransactionFiller.adapt(Self.request { $0.gasPrice = 7 }, to: support)
            #expect(priced.type == .legacy && priced.gasPrice == 7)
        }
    }

    @Test(arguments: [0, 1, 2])
    func eip1559FeesAreRefusedWithoutTheSetting(variant: Int) throws {
        let request = Self.request { request in
            switch variant {
            case 0: request.maxFeePerGas = 10
            case 1: request.maxPriorityFeePerGas = 1
            default: request.type = .dynamicFee
            }
        }
        let error = try #require(throws: RPCError.self) { try TransactionFiller.adapt(request, to: Self.strict) }
        #expect(error.code == -32602)
        #expect(error.message.contains("legacy (EIP-155)"))
        #expect(error.message.contains("legacyForDynamicFee"))
    }

    @Test func withTheSettingMaxFeePerGasBecomesTheGasPrice() throws {
        let adapted = try TransactionFiller.adapt(
            Self.request {
                $0.maxFeePerGas = 30_000_000_000
                $0.maxPriorityFeePerGas = 1_000_000_000
                $0.type = .dynamicFee
            }, to: Self.converting)
        #expect(adapted.type == .legacy)
        #expect(adapted.gasPrice == 30_000_000_000)
        #expect(adapted.maxFeePerGas == nil && adapted.maxPriorityFeePerGas == nil)
        let tipOnly = try TransactionFiller.adapt(Self.request { $0.maxPriorityFeePerGas = 5 }, to: Self.converting)
        #expect(tipOnly.type == .legacy && tipOnly.gasPrice == nil && tipOnly.maxPriorityFeePerGas == nil)
    }

    @Test func accessListsAreRefused() throws {
        let entry = AccessListEntry(address: Self.to, storageKeys: [])
        for request in [Self.request { $0.accessList = [entry] }, Self.request { $0.type = .accessList }] {
            let error = try #require(throws: RPCError.self) {
                try TransactionFiller.adapt(request, to: Self.converting)
            }
            #expect(error.message.contains("access list"))
        }
        let empty = try TransactionFiller.adapt(Self.request { $0.accessList = [] }, to: Self.strict)
        #expect(empty.type == .legacy && empty.accessList == nil)
    }
}
