/**
 * @msgpack/msgpack, loaded when the first message is encoded or decoded. Every launcher and
 * daemon imports the wire code, but `ompx run` on one host with ranks that never talk to it
 * sends no message, and evaluating the library (its default extension codec, its caches) cost
 * ~2 ms of every start (issue #16).
 */
type MsgPack = typeof import('@msgpack/msgpack')

let lib: MsgPack | undefined
export const msgpack = (): MsgPack => (lib ??= require('@msgpack/msgpack') as MsgPack)
