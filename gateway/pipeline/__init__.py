"""One request's life, in the order it happens, for every client surface:

admission.py  authenticate, decode (the call's surface), resolve the model, plan the routes,
              check policy and limits
answer.py     try the planned routes (attempts.py: breakers, retries, fallbacks), each through
              its provider's adapter, giving back an IR response or an IR event stream
end.py        the usage record, metrics, logs and traces, and the limits settled

The consumer in gateway/api/surface.py moves bytes between the client and these functions;
the surface (protocols/<name>/surface.py) turns the IR into the client's wire format.
"""

from gateway.pipeline.admission import admit
from gateway.pipeline.answer import complete, open_stream
from gateway.pipeline.call import Call
from gateway.pipeline.end import finish

__all__ = ["Call", "admit", "complete", "finish", "open_stream"]
