"""What the tests share, apart from fixtures (those are in ``tests/conftest.py``, which imports from here).

- :mod:`.models`: real MNIST digits, small Keras models, and ``fit`` with the callback.
- :mod:`.logs`: logs written without training, through ``FeatureMapsWriter``, and by hand
  where a test needs what the writer never writes.
- :mod:`.plugin`: the plugin in an in-process TensorBoard app (werkzeug client, multiplexer).
- :mod:`.tensorboard`: a real ``tensorboard`` process and HTTP requests to it (the benchmarks use it too).
- :mod:`.browser`: Debian's Chromium (the benchmarks use it too) and waiting for the panel's grid.
- :mod:`.processes`: scripts in a new Python process that can import these helpers.
- :mod:`.gcs`: a local GCS emulator with a bucket, and counting uploads (the gs:// benchmark uses it too).
- :mod:`.readme`: the README's ``python`` snippets (the TensorFlow-free venv benchmark uses it too).

Test modules import from here or from ``conftest``, never from another test module or the
benchmarks. The modules the benchmarks import (:mod:`.tensorboard`, :mod:`.browser`, :mod:`.readme`, :mod:`.gcs`) need
neither pytest nor the other helpers.
"""
