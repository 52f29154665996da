import type { ServerHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

/**
 * Tracks the connections and HTTP/2 sessions of a server so that a close can be graceful
 * first (GOAWAY, Connection: close) and forceful when the deadline passes.
 */
export function createDrain(app: FastifyInstance): {
  /** Sends GOAWAY to every HTTP/2 session, then closes the server; destroys what remains when `deadline` aborts. */
  close(deadline: AbortSignal): Promise<void>;
} {
  const sockets = new Set<Socket>();
  const sessions = new Set<ServerHttp2Session>();
  app.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  app.server.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  return {
    async close(deadline) {
      // GOAWAY lets the streams in flight finish and refuses new ones (RFC 9113 section 6.8).
      for (const session of sessions) session.close();
      const destroyAll = () => {
        for (const session of sessions) session.destroy();
        for (const socket of sockets) socket.destroy();
      };
      if (deadline.aborted) destroyAll();
      else deadline.addEventListener('abort', destroyAll, { once: true });
      try {
        await app.close();
      } finally {
        deadline.removeEventListener('abort', destroyAll);
      }
    },
  };
}
