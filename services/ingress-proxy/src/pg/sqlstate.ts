/** SQLSTATEs Agate answers with. */
export const SQLSTATE = {
  insufficientPrivilege: '42501',
  invalidPassword: '28P01',
  tooManyConnections: '53300',
  queryCanceled: '57014',
  unknownTarget: '3D000',
  cannotConnect: '08001',
  protocolViolation: '08P01',
  systemError: '58000',
  adminShutdown: '57P01',
  invalidStatementName: '26000',
  invalidCursorName: '34000',
  undefinedFunction: '42883',
  featureNotSupported: '0A000',
  programLimitExceeded: '54000',
} as const;
