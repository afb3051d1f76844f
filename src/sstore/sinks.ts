/**
 * Glue between file transfers and where the bytes go: a SnapshotSink over a wire channel (a
 * daemon pushing to the HNP, the HNP staging a restart to a daemon), a SnapshotSink straight into
 * a FileReceiver (the HNP's own node, in-process), and the receiving side of a channel, which
 * stops reading from the peer while chunks wait for the disk. Memory stays bounded end to end.
 */
import type { SnapshotSink } from './types'
import { DEFAULT_MAX_QUEUED_BYTES, type Channel } from '../wire/channel'
import { WireError } from '../wire/codec'
import type { Message } from '../wire/messages'
import type { FileChunk } from './chunk-codec'
import type { FileReceiver } from './file-receiver'
import { releaseBody } from '../wire/frame-pool'

/**
 * How many received bytes may wait for the disk before we stop reading from the peer: two
 * transfer chunks keep the disk busy; more only costs memory, per rank being received.
 */
export const DEFAULT_MAX_PENDING_BYTES = 8 * 1024 * 1024

/**
 * Send each chunk as the message `toMessage` builds (orted.file / hnp.file with the ids the
 * receiver routes by), then wait until the channel's queue is back under `maxQueuedBytes`.
 */
export function channelSink(ch: Channel, toMessage: (c: FileChunk) => Message, maxQueuedBytes = DEFAULT_MAX_QUEUED_BYTES): SnapshotSink {
  return {
    // send() encodes the chunk into a frame at once; `data` is not referenced after it.
    releasesData: true,
    async write(path, offset, data, codec, last) {
      if (!ch.send(toMessage({ path, offset, data, codec, last }))) {
        throw new WireError(`connection to ${ch.remote} closed during the snapshot transfer`)
      }
      await ch.drained(maxQueuedBytes)
    },
  }
}

/**
 * A sink writing straight into a receiver in this process. Each chunk resolves once written, so
 * the sender can reuse its buffer (it reads the next chunk meanwhile: read and write overlap);
 * `maxPendingBytes` still bounds what other writers queue.
 */
export function receiverSink(receiver: FileReceiver, maxPendingBytes = DEFAULT_MAX_PENDING_BYTES): SnapshotSink {
  return {
    releasesData: true,
    async write(path, offset, data, codec, last) {
      await receiver.whenPendingBelow(maxPendingBytes)
      await receiver.write({ path, offset, data, codec, last })
    },
  }
}

/**
 * Hand a chunk that arrived on `ch` to `receiver`. While more than `maxPendingBytes` wait for the
 * disk, reading from `ch` is held, so the sender sees TCP backpressure and its drained() waits.
 * Resolves/rejects like receiver.write (the caller reports a failure and aborts the transfer).
 */
export function receiveFromChannel(ch: Channel, receiver: FileReceiver, chunk: FileChunk, maxPendingBytes = DEFAULT_MAX_PENDING_BYTES): Promise<void> {
  const done = receiver.write(chunk)
  // Written (or refused): the frame body the chunk's bytes live in can take the next frame.
  const release = () => void releaseBody(chunk.data)
  done.then(release, release)
  if (receiver.pendingBytes > maxPendingBytes) {
    const release = ch.holdReading()
    void receiver.whenPendingBelow(maxPendingBytes / 2).then(release)
  }
  return done
}
