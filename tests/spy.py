"""A callback that records which rows each training epoch used."""

from skorch.callbacks import Callback


class RowSpy(Callback):
    """Record, per month and per epoch, the ids (column 0) of training rows
    and the optimizer's learning rate at each batch."""

    def initialize(self):
        self.months = []
        return self

    def on_train_begin(self, net, **kwargs):
        self.months.append({"epochs": [], "lr": set(), "params": {
            k: v.detach().clone() for k, v in net.module_.state_dict().items()}})

    def on_epoch_begin(self, net, **kwargs):
        self.months[-1]["epochs"].append([])

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            X = batch[0]
            self.months[-1]["epochs"][-1].extend(X[:, 0].long().tolist())
            self.months[-1]["lr"].update(g["lr"] for g in net.optimizer_.param_groups)
