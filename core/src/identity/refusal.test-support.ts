import { AuthenticationError } from '../errors.js';
import type { TokenVerifier } from './oidc.js';

/** The verifier's refusal of `token`; a token it accepts fails the test. */
export async function refusal(verifier: TokenVerifier, token: string): Promise<AuthenticationError> {
  try {
    await verifier.verify(token);
  } catch (err) {
    if (err instanceof AuthenticationError) return err;
    throw err;
  }
  throw new Error('the token was accepted');
}
