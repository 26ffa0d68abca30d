from __future__ import annotations

from conftest import sequences_by_name


def test_every_artifact_type_lands_in_one_run(make_project):
    project = make_project()
    project.write_catalog(
        """
        metrics:
          type: json.JSONDataset
          filepath: data/metrics.json
          aim: {type: metrics, context: {subset: test}}
        figure:
          type: matplotlib.MatplotlibDataset
          filepath: data/figure.png
          aim: {type: figure}
        """
    )
    project.write_pipeline(
        [("make_metrics", "params:seed", "metrics"),
         ("make_matplotlib_figure", "params:seed", "figure")]
    )
    project.run()
    (run,) = project.read_runs()
    seqs = sequences_by_name(run)
    assert seqs[("metric", "metrics.accuracy")][0]["values"] == [0.53]
    assert seqs[("figure", "figure")][0]["values"] == [{"traces": ["image"]}]
    assert (project.path / "data" / "figure.png").exists()
