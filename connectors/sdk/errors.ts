// Connectors raise Roster's own error classes, so the core can tell "fix the config" from
// "retry later" without knowing the connector.
export { AppError, ConfigError, TransientError, InternalError } from '../../lib/errors.js';
