/**
 * Defaults shared by the agent and the CLI.
 *
 * API: VERSION, DEFAULT_SOCKET, socketPath()
 */

/** Tapestry's version, printed by status. */
export const VERSION = '0.1.0';

/** Where the agent's API listens unless told otherwise (Cilium: /var/run/cilium/cilium.sock). */
export const DEFAULT_SOCKET = '/var/run/tapestry/tapestry.sock';

/** The API socket the CLI talks to: --socket, $TAPESTRY_SOCKET, or the default. */
export function socketPath(flag?: string): string {
  return flag ?? process.env['TAPESTRY_SOCKET'] ?? DEFAULT_SOCKET;
}
