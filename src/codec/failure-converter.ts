/**
 * Failures with their message and stack trace encoded as a payload, so the payload codec encrypts
 * them too: a HeyGen or SMTP error may quote what we sent (a consent link, an address). Loaded by
 * path (DataConverter.failureConverterPath) on the worker and every client that has the codec keys.
 */
import { DefaultFailureConverter } from '@temporalio/common';
import type { PayloadConverter, ProtoFailure, SerializationContext } from '@temporalio/common';

/** Our own refusal of a plaintext payload says nothing private: operators read it without the codec. */
const SHOWN_IN_CLEAR = new Set(['PlaintextPayloadError']);
const plain = new DefaultFailureConverter({ encodeCommonAttributes: false });

class EncodedFailureConverter extends DefaultFailureConverter {
  override errorToFailure(
    err: unknown,
    payloadConverter: PayloadConverter,
    context?: SerializationContext,
  ): ProtoFailure {
    if (err instanceof Error && SHOWN_IN_CLEAR.has(err.name))
      return plain.errorToFailure(err, payloadConverter, context);
    return super.errorToFailure(err, payloadConverter, context);
  }
}

export const failureConverter = new EncodedFailureConverter({ encodeCommonAttributes: true });
