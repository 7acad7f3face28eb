import { expect } from 'chai';
import { AppError, toWireError } from '../../server/errors.js';

describe('AppError', function () {
  it('keeps its code when raised by a lazily loaded copy of the module', async function () {
    const lazy = await import('../../server/errors.js');
    const copy = new lazy.AppError('conflict', 'that tenant id is taken');
    expect(toWireError(copy)).to.deep.equal({ code: 'conflict', message: 'that tenant id is taken' });
    expect(copy instanceof AppError).to.equal(true);
  });

  it('does not take other errors for AppErrors', function () {
    const lookalike = Object.assign(new Error('boom'), { name: 'AppError', code: 'conflict' });
    expect(lookalike instanceof AppError).to.equal(false);
    expect(toWireError(lookalike)).to.deep.equal({ code: 'internal', message: 'internal server error' });
    expect(toWireError(null).code).to.equal('internal');
  });
});
